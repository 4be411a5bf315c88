import pytest

from whisper_api.exceptions import BadRequest
from whisper_api.jobs import KNOWN_MODELS, Job, JobOptions, JobStatus, SplitRoads, device_key, gpu_id

NAMES = set(KNOWN_MODELS) | {"my-finetune"}


def test_defaults_follow_the_seed():
    options = JobOptions.from_form({}, NAMES)
    assert options == JobOptions(model_name="base", language=None, initial_prompt=None,
                                 upgrade_transcribation=False, up_speed=1.0, split_roads=None)


def test_fields_are_parsed():
    options = JobOptions.from_form({
        "model_name": "my-finetune", "language": "RU", "initial_prompt": " Учебный центр ",
        "upgrade_transcribation": "true", "up_speed": "1,5", "split_roads": "2, Клиент , Старший менеджер",
    }, NAMES)
    assert options.model_name == "my-finetune" and options.language == "ru"
    assert options.initial_prompt == "Учебный центр" and options.upgrade_transcribation is True
    assert options.up_speed == 1.5
    assert options.roads.roles == ("Клиент", "Старший менеджер")
    assert options.split_roads == "2,Клиент,Старший менеджер"


@pytest.mark.parametrize("form, needle", [
    ({"model_name": "huge"}, "valid names: base"),
    ({"language": "klingon"}, "language"),
    ({"up_speed": "abc"}, "number"),
    ({"up_speed": "0.2"}, "between 0.5 and 3.0"),
    ({"up_speed": "nan"}, "between"),
    ({"upgrade_transcribation": "maybe"}, "true or false"),
    ({"split_roads": "two,A,B"}, "not a number"),
    ({"split_roads": "9," + ",".join("ABCDEFGHI")}, "1-8"),
    ({"split_roads": "2,A"}, "exactly 2 role names"),
    ({"split_roads": "2,A,"}, "must not be empty"),
])
def test_bad_fields_are_rejected_with_a_reason(form, needle):
    with pytest.raises(BadRequest) as caught:
        JobOptions.from_form(form, NAMES)
    assert needle in caught.value.message


def test_auto_language_means_detection():
    assert JobOptions.from_form({"language": "auto"}, NAMES).language is None


def test_split_roads_round_trip():
    assert str(SplitRoads.parse("3,A,B,C")) == "3,A,B,C"


def test_status_dict_has_the_seed_fields():
    job = Job(id="abc", filename="call.mp3", path="/x", file_size=10, options=JobOptions(),
              status=JobStatus.DONE, created_at=100.0, started_at=101.5, completed_at=104.0,
              device="cuda:1", result="[00:00] hi")
    data = job.to_dict()
    assert data["status"] == "done" and data["result"] == "[00:00] hi" and data["error"] is None
    assert data["queue_time"] == 1.5 and data["processing_time"] == 2.5
    assert data["gpu_id"] == 1 and data["created_at"] == "1970-01-01T00:01:40.000Z"
    assert gpu_id("cpu:0") is None and device_key("cuda:0") == "0" and device_key("cpu:1") == "cpu:1"
