"""The dashboard's Russian and English strings, and which of the two a request gets."""
from __future__ import annotations

from flask import Request

LANGUAGES = ("en", "ru")
DEFAULT = "en"
COOKIE = "lang"
COOKIE_MAX_AGE = 365 * 24 * 3600

# key: (English, Russian). One tuple per key, so no string can lack a translation.
# ``{name}`` placeholders are filled in by the page's JavaScript.
_TABLE: dict[str, tuple[str, str]] = {
    "app_title": ("Whisper transcription", "Транскрибация Whisper"),
    "nav_dashboard": ("Dashboard", "Панель"),
    "nav_results": ("Results", "Результаты"),
    "login_title": ("API key", "Ключ API"),
    "login_key": ("This service needs an API key", "Для этого сервиса нужен ключ API"),
    "login_open": ("This service needs no key.", "Этому сервису ключ не нужен."),
    "login_wrong": ("Wrong key.", "Неверный ключ."),
    "login_enter": ("Enter", "Войти"),
    "switch_language": ("Language", "Язык"),
    "conn_live": ("live", "онлайн"),
    "conn_pool_down": ("workers restarting, retrying…", "воркеры перезапускаются, повтор…"),
    "conn_lost": ("service unreachable, retrying…", "сервис недоступен, повтор…"),
    "updated_at": ("updated {time}", "обновлено {time}"),
    # The upload form.
    "upload_title": ("New transcription", "Новая транскрибация"),
    "file_label": ("Audio or video file", "Аудио- или видеофайл"),
    "drop_hint": ("Drop a file here or click to choose", "Перетащите файл сюда или нажмите, чтобы выбрать"),
    "max_size": ("up to {mb} MB", "до {mb} МБ"),
    "model_label": ("Model", "Модель"),
    "models_preloaded": ("Preloaded", "Предзагружены"),
    "models_local": ("In the models folder", "В папке моделей"),
    "models_hub": ("From the model hub (needs internet)", "С хаба моделей (нужен интернет)"),
    "model_loaded": ("loaded", "загружена"),
    "model_loading": ("loading", "загружается"),
    "model_error": ("load error", "ошибка загрузки"),
    "model_on_demand": ("loads on first use", "загрузится при первом запуске"),
    "language_label": ("Language", "Язык"),
    "language_auto": ("Detect automatically", "Определить автоматически"),
    "language_other": ("Other codes", "Другие коды"),
    "prompt_label": ("Initial prompt", "Начальный промпт"),
    "prompt_hint": ("Names, terms, punctuation style the model should follow",
                    "Имена, термины, стиль пунктуации, которым модели следовать"),
    "upgrade_label": ("Improve the text with an LLM (upgrade_transcribation)",
                      "Улучшить текст через LLM (upgrade_transcribation)"),
    "speed_label": ("Audio speed-up (up_speed)", "Ускорение аудио (up_speed)"),
    "split_label": ("Split into tracks", "Разделить на дорожки"),
    "split_hint": ("One channel per speaker, e.g. a stereo call recording",
                   "Один канал на участника, например стерео-запись звонка"),
    "tracks_label": ("Number of tracks", "Количество дорожек"),
    "role_label": ("Role of track {n}", "Роль дорожки {n}"),
    "role_default": ("Speaker {n}", "Участник {n}"),
    "submit": ("Transcribe", "Транскрибировать"),
    "uploading": ("Uploading… {percent}%", "Загрузка… {percent}%"),
    # Form errors.
    "err_no_file": ("Choose a file first.", "Сначала выберите файл."),
    "err_too_large": ("The file is {size} MB; the limit is {mb} MB.",
                      "Файл весит {size} МБ, а предел — {mb} МБ."),
    "err_role_empty": ("Give every track a role name.", "Укажите название роли для каждой дорожки."),
    "err_role_comma": ("Role names cannot contain commas.", "Названия ролей не могут содержать запятые."),
    "err_speed": ("The speed-up must be between {min} and {max}.", "Ускорение должно быть от {min} до {max}."),
    "err_rejected": ("The service rejected the file: {message}", "Сервис не принял файл: {message}"),
    "err_unavailable": ("The service is temporarily unavailable: {message}",
                        "Сервис временно недоступен: {message}"),
    "err_network": ("The service could not be reached. Check the connection and try again.",
                    "Не удалось связаться с сервисом. Проверьте соединение и попробуйте снова."),
    # Task cards.
    "tasks_title": ("Your tasks", "Ваши задачи"),
    "status_queued": ("queued", "в очереди"),
    "status_processing": ("processing", "обрабатывается"),
    "status_done": ("done", "готово"),
    "status_error": ("failed", "ошибка"),
    "state_queued": ("Waiting in the queue", "Ожидает в очереди"),
    "state_queued_at": ("Waiting in the queue, position {position}", "Ожидает в очереди, позиция {position}"),
    "state_processing": ("Transcribing on {device}: {percent}%", "Транскрибация на {device}: {percent}%"),
    "state_polishing": ("Improving the text with the LLM…", "Улучшение текста через LLM…"),
    "state_done": ("Done in {seconds} s", "Готово за {seconds} с"),
    "state_error": ("Failed: {message}", "Ошибка: {message}"),
    "state_gone": ("This task no longer exists on the service.", "Этой задачи больше нет на сервисе."),
    "upgraded": ("Improved by the LLM; the downloads keep the original timed transcript.",
                 "Улучшено через LLM; в файлах для скачивания — исходный транскрипт с таймкодами."),
    "upgrade_failed": ("The LLM step failed, so this is the original transcript: {message}",
                       "Улучшение через LLM не удалось, показан исходный транскрипт: {message}"),
    "dismiss": ("Hide", "Скрыть"),
    "copy": ("Copy", "Копировать"),
    "copied": ("Copied", "Скопировано"),
    "download": ("Download", "Скачать"),
    "empty_result": ("No speech was recognised.", "Речь не распознана."),
    # Monitors.
    "queue_title": ("Queue", "Очередь"),
    "queue_processing": ("Processing", "В обработке"),
    "queue_queued": ("Queued", "В очереди"),
    "queue_completed": ("Completed", "Завершены"),
    "queue_failed": ("Failed", "С ошибкой"),
    "queue_empty": ("nothing", "пусто"),
    "show_result": ("Show", "Показать"),
    "all_results": ("All results", "Все результаты"),
    "devices_title": ("Devices", "Устройства"),
    "cpu_workers": ("CPU workers", "CPU-воркеры"),
    "other_workers": ("Other workers", "Прочие воркеры"),
    "gpu_memory": ("Memory", "Память"),
    "gpu_utilisation": ("Utilisation", "Загрузка"),
    "worker_status": ("Worker", "Воркер"),
    "worker_starting": ("starting", "запускается"),
    "worker_loading": ("loading models", "загружает модели"),
    "worker_idle": ("idle", "свободен"),
    "worker_busy": ("busy", "занят"),
    "worker_restarting": ("restarting", "перезапускается"),
    "worker_job": ("job", "задача"),
    "worker_restarts": ("restarts", "перезапусков"),
    "no_devices": ("No workers yet.", "Воркеров пока нет."),
    "models_title": ("Models", "Модели"),
    "no_models": ("No model loaded yet.", "Пока не загружено ни одной модели."),
    "logs_title": ("Log", "Журнал"),
    "no_logs": ("No log lines yet.", "Записей пока нет."),
    "unavailable": ("Unavailable: {message}", "Недоступно: {message}"),
    # The results page.
    "results_title": ("Finished transcripts", "Готовые транскрипты"),
    "results_count": ("{shown} of {total}, newest first", "{shown} из {total}, сначала новые"),
    "results_new": ("New results have finished.", "Появились новые результаты."),
    "reload": ("Reload", "Обновить"),
    "results_empty": ("No finished transcripts yet.", "Готовых транскриптов пока нет."),
    "failed_title": ("Failed tasks", "Задачи с ошибкой"),
    "col_audio": ("Audio", "Аудио"),
    "col_took": ("Took", "Заняло"),
    "delete": ("Delete", "Удалить"),
    "delete_confirm": ("Really delete?", "Точно удалить?"),
    "delete_busy": ("The task is being processed; try again when it is finished.",
                    "Задача ещё обрабатывается; попробуйте, когда она завершится."),
    "delete_failed": ("Could not delete: {message}", "Не удалось удалить: {message}"),
    "hide": ("Hide", "Скрыть"),
    "seconds": ("{n} s", "{n} с"),
}


def strings(lang: str) -> dict[str, str]:
    """Every string of the dashboard in ``lang``."""
    index = LANGUAGES.index(lang)
    return {key: pair[index] for key, pair in _TABLE.items()}


def fill(text: str, values: dict) -> str:
    """Put ``values`` into the ``{name}`` placeholders of ``text`` (as the page's ``t()`` does)."""
    for name, value in values.items():
        text = text.replace("{" + name + "}", str(value))
    return text


def choose(request: Request) -> str:
    """The language for ``request``: ``?lang=``, then the cookie, then Accept-Language."""
    for candidate in (request.args.get("lang"), request.cookies.get(COOKIE)):
        if candidate in LANGUAGES:
            return candidate
    return request.accept_languages.best_match(LANGUAGES, default=DEFAULT)
