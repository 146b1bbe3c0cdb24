"""Browser steps shared by the Playwright tests."""

from __future__ import annotations

from pathlib import Path


def upload_image(page, elem_id: str, path: Path | str) -> None:
    """Upload into a gr.Image and wait until the server has the file, as a user waits for the preview.

    Gradio refuses an event while an upload is in flight ("Waiting for file(s) to finish uploading,
    please retry"), so a click right after set_input_files is lost on a busy machine.
    """
    page.locator(f"#{elem_id} input[type=file]").set_input_files(str(path))
    page.locator(f"#{elem_id} img[src*='/gradio_api/file='][src$='/{Path(path).name}']").first.wait_for()
