"""File attachments: `POST /file_attachments` (multipart upload)."""

from __future__ import annotations

from starlette.datastructures import UploadFile
from starlette.responses import Response

from ..errors import ApiError, unprocessable
from ..store import FileAttachment
from .common import Ctx, ok, operation

ALLOWED_ATTACHMENT_EXTENSIONS = (".pdf", ".png", ".jpg", ".jpeg", ".tiff", ".tif", ".bmp", ".gif")


def files_base(ctx: Ctx) -> str:
    return str(ctx.request.base_url).rstrip("/") + "/_sandbox/files"


@operation("POST", "/file_attachments", "file_attachments")
async def create_file_attachment(ctx: Ctx) -> Response:
    content_type = ctx.request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise ApiError(
            400,
            {"message": "The request must be multipart/form-data", "code": "NotAMultipartFile"},
        )
    form = await ctx.request.form()
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise ApiError(
            400, {"message": "file is required", "field": "file", "code": "NotExistRequiredKey"}
        )
    filename_field = form.get("filename")
    filename = filename_field if isinstance(filename_field, str) else (upload.filename or "file")
    if not filename.lower().endswith(ALLOWED_ATTACHMENT_EXTENSIONS):
        raise unprocessable(f"Unsupported file type for {filename!r}")
    content = await upload.read()
    now = ctx.now
    attachment = FileAttachment(
        id=ctx.sandbox.ids.next("file_attachments"),
        filename=filename,
        content=content,
        content_type=upload.content_type or "application/octet-stream",
        created_at=now,
        updated_at=now,
    )
    ctx.company.file_attachments.add(attachment)
    return ok(ctx.ser.file_attachment(attachment, files_base(ctx)), 201)
