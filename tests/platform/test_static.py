"""Static files: served from memory with an ETag, revalidated cheaply, nothing else reachable."""

from __future__ import annotations

from lotse.platform.staticfiles import FOLDER


async def test_static_files_are_served_with_type_and_etag(client):
    response = await client.get("/static/lotse.css")
    assert response.status_code == 200
    assert response.mimetype == "text/css"
    assert await response.get_data() == (FOLDER / "lotse.css").read_bytes()
    etag = response.headers["ETag"]
    assert "no-cache" in response.headers["Cache-Control"]

    again = await client.get("/static/lotse.css", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert await again.get_data() == b""

    script = await client.get("/static/call.js")
    assert script.mimetype in ("text/javascript", "application/javascript")


async def test_static_serves_nothing_outside_its_files(client):
    for path in ("/static/__init__.py", "/static/../app.py", "/static/missing.css", "/static/%2e%2e/config.py"):
        response = await client.get(path)
        assert response.status_code == 404, path


async def test_templates_link_static_files_that_exist(app):
    async with app.test_request_context("/"):
        from quart import url_for

        assert url_for("static", filename="lotse.css") == "/static/lotse.css"
