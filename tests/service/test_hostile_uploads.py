"""Uploads to the page's batch route that are hostile rather than merely wrong: a 4xx, never a 500."""

from __future__ import annotations

from test_safety import assert_clean


def test_a_deeply_nested_json_upload_is_422_naming_the_file(serve):
    server = serve()
    deep = b"[" * 100_000 + b"]" * 100_000
    with server.client() as client:
        answer = client.post("/ui/batch", files={"file": ("deep.json", deep, "application/json")})
    assert answer.status_code == 422, answer.text
    assert_clean(answer)
    assert answer.json()["error"]["message"] == (
        "deep.json: JSON nested too deeply; an application is one object of plain values"
    )
