from tasks.annotate.call_cache import CallCache, call_key

MSG = [{"role": "user", "content": "hi"}]


def test_key_changes_with_every_part_of_the_call():
    base = call_key("http://a", "m", MSG, {"temperature": 0.7, "attempt": 0})
    assert base == call_key("http://a", "m", MSG, {"attempt": 0, "temperature": 0.7})
    others = [call_key("http://b", "m", MSG, {"temperature": 0.7, "attempt": 0}),
              call_key("http://a", "n", MSG, {"temperature": 0.7, "attempt": 0}),
              call_key("http://a", "m", [{"role": "user", "content": "ho"}], {"temperature": 0.7, "attempt": 0}),
              call_key("http://a", "m", MSG, {"temperature": 0.7, "attempt": 1})]
    assert len({base, *others}) == 5


def test_replies_survive_reopening(tmp_path):
    path = tmp_path / "calls.sqlite"
    cache = CallCache(path)
    cache.put("k1", "reply", 10, 5)
    cache.close()
    again = CallCache(path)
    assert again.get("k1").text == "reply" and again.get("k1").prompt_tokens == 10
    assert len(again) == 1 and again.keys() == {"k1"} and again.get("k2") is None
