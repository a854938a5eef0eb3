"""Answers of the reference endpoints that have a model of their own."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ErrorCodeInfo(BaseModel):
    """One problem code: when it is answered, and what it means."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "code": "stale_version",
                    "statuses": [412],
                    "zh": "记录在读取后已被修改（If-Match 过时）；重新读取后再更新",
                    "en": "the record changed since it was read (stale If-Match); read it "
                    "again, then update",
                }
            ]
        }
    )

    code: str = Field(description="the problem's machine-readable `code`")
    statuses: list[int] = Field(description="the HTTP statuses it is answered with")
    zh: str = Field(description="its meaning in Chinese")
    en: str = Field(description="its meaning in English")
