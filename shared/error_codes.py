"""Every problem ``code`` a finmatch service can answer: one declaration each, with its statuses
and its meaning in Chinese and English.

A ``ProblemError`` takes its code as an ``ErrorCode`` (mypy refuses a bare string) and refuses an
unregistered string at run time, so a code cannot be raised without being declared here. The
gateway lists the public ones at ``GET /v1/reference/error-codes`` and in its OpenAPI schema.
``internal`` codes are answered only on the services' internal endpoints (the gateway's calls),
never to a public client.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    statuses: tuple[int, ...]
    zh: str
    en: str
    internal: bool

    def __new__(
        cls, value: str, statuses: tuple[int, ...], zh: str, en: str, internal: bool = False
    ) -> ErrorCode:
        member = str.__new__(cls, value)
        member._value_ = value
        member.statuses = statuses
        member.zh = zh
        member.en = en
        member.internal = internal
        return member

    @classmethod
    def of(cls, value: str) -> ErrorCode:
        """The registered code named ``value``; ValueError if there is none."""
        member = cls._value2member_map_.get(value)
        if not isinstance(member, cls):
            raise ValueError(f"{value!r} is not a registered problem code (shared/error_codes.py)")
        return member

    # --- generic, by HTTP status ------------------------------------------------------------
    HTTP_ERROR = (
        "http_error",
        (400,),
        "请求体无法按其媒体类型读取（例如不是 UTF-8 的 JSON）",
        "the body could not be read as its media type (e.g. JSON that is not UTF-8)",
    )
    BAD_REQUEST = (
        "bad_request",
        (400,),
        "请求格式错误（例如看板登录的请求体不是一个密钥）",
        "malformed request (e.g. a dashboard sign-in body that is not a key)",
    )
    UNAUTHORIZED = ("unauthorized", (401,), "未通过身份验证", "not authenticated")
    FORBIDDEN = ("forbidden", (403,), "该凭证无权执行此操作", "refused for this credential")
    NOT_FOUND = (
        "not_found",
        (404,),
        "不存在，或不在调用方的权限范围内（两者的回答相同，以免编号被探测）",
        "not found, or outside the caller's scope (answered alike so that ids cannot be probed)",
    )
    METHOD_NOT_ALLOWED = (
        "method_not_allowed",
        (405,),
        "该路径不支持此 HTTP 方法；Allow 头列出支持的方法",
        "the path does not serve this method; the Allow header names those it serves",
    )
    CONFLICT = (
        "conflict",
        (409,),
        "与资源当前状态冲突（重复或不允许的状态变化）",
        "conflicts with the resource's current state (a duplicate or a transition not allowed)",
    )
    PRECONDITION_FAILED = (
        "precondition_failed",
        (412,),
        "前提条件不成立",
        "a precondition of the request does not hold",
    )
    PAYLOAD_TOO_LARGE = (
        "payload_too_large",
        (413,),
        "请求体超过上限",
        "the body is larger than allowed",
    )
    VALIDATION_ERROR = (
        "validation_error",
        (422,),
        "输入无效；errors 逐项列出字段及原因",
        "invalid input; `errors` names each field and why",
    )
    PRECONDITION_REQUIRED = (
        "precondition_required",
        (428,),
        "更新须带 If-Match（读取时得到的 ETag，或 *）",
        "an update needs If-Match (the ETag read, or *)",
    )
    RATE_LIMITED = (
        "rate_limited",
        (429,),
        "请求过于频繁；按 Retry-After 等待后重试",
        "too many requests; retry after Retry-After seconds",
    )
    TOO_MANY_REQUESTS = (
        "too_many_requests",
        (429,),
        "下游服务限流（无具体代码时）；按 Retry-After 重试",
        "a downstream service limited the rate (without a code of its own); honour Retry-After",
    )
    INTERNAL_ERROR = (
        "internal_error",
        (500,),
        "服务内部错误，已记录日志",
        "an unexpected error; it has been logged",
    )
    BAD_GATEWAY = (
        "bad_gateway",
        (502,),
        "下游服务的回答无法使用",
        "a downstream service answered badly",
    )
    SERVICE_UNAVAILABLE = (
        "service_unavailable",
        (503,),
        "依赖的服务暂不可用；按 Retry-After 重试",
        "a dependency is unavailable; retry after Retry-After seconds",
    )
    GATEWAY_TIMEOUT = (
        "gateway_timeout",
        (504,),
        "下游服务未在时限内回答",
        "a downstream service did not answer in time",
    )

    # --- authentication and sessions ---------------------------------------------------------
    MISSING_KEY = (
        "missing_key",
        (401,),
        "缺少 Authorization: Bearer <API 密钥>",
        "no Authorization: Bearer <API key>",
    )
    INVALID_KEY = (
        "invalid_key",
        (401,),
        "API 密钥未知或已吊销",
        "unknown or revoked API key",
    )
    KEY_EXPIRED = (
        "key_expired",
        (401,),
        "API 密钥已过期；请改用替换它的新密钥",
        "the API key has expired; use its replacement",
    )
    KEY_REVOKED = (
        "key_revoked",
        (401,),
        "API 密钥已吊销（网关对外答作 invalid_key）",
        "the API key was revoked (the gateway answers it as invalid_key)",
        True,
    )
    AUTH_THROTTLED = (
        "auth_throttled",
        (429,),
        "同一地址或同一密钥前缀认证失败次数过多；按 Retry-After 等待",
        "too many failed authentications from this address or on this key prefix; wait",
    )
    INVALID_SESSION = (
        "invalid_session",
        (401,),
        "看板会话已结束；请重新登录",
        "the dashboard session has ended; sign in again",
    )
    CSRF_HEADER_MISSING = (
        "csrf_header_missing",
        (403,),
        "以会话 Cookie 认证的写请求缺少看板请求头",
        "a write authenticated by the session cookie lacks the dashboard's header",
    )
    CROSS_SITE = (
        "cross_site",
        (403,),
        "看板登录请求来自其他站点",
        "a dashboard sign-in sent from another site",
    )
    NOT_OFFICIAL = (
        "not_official",
        (403,),
        "看板只对官员和管理员的密钥开放",
        "the dashboard is for officials' and admins' keys only",
    )
    UNAVAILABLE = (
        "unavailable",
        (503,),
        "看板登录暂时无法核验密钥；稍后重试",
        "the dashboard cannot check the key now; retry shortly",
    )

    # --- idempotency and optimistic updates --------------------------------------------------
    IDEMPOTENCY_KEY_REUSED = (
        "idempotency_key_reused",
        (422,),
        "该 Idempotency-Key 已用于另一个请求",
        "this Idempotency-Key was used for a different request",
    )
    IDEMPOTENCY_IN_FLIGHT = (
        "idempotency_in_flight",
        (409,),
        "带相同 Idempotency-Key 的请求仍在处理；稍后重试",
        "a request with this Idempotency-Key is still being processed; retry shortly",
    )
    IDEMPOTENCY_SECRET_NOT_REPLAYED = (
        "idempotency_secret_not_replayed",
        (409,),
        "重放的回答含一次性密钥，不再给出；请改用新的 Idempotency-Key",
        "the answer held a secret shown once and is not replayed; use a new Idempotency-Key",
    )
    STALE_VERSION = (
        "stale_version",
        (412,),
        "记录在读取后已被修改（If-Match 过时）；重新读取后再更新",
        "the record changed since it was read (stale If-Match); read it again, then update",
    )
    CONCURRENT_CREATE = (
        "concurrent_create",
        (409,),
        "同一记录正被并发创建；重试",
        "the same record was being created concurrently; retry",
    )

    # --- firms, products, applications -------------------------------------------------------
    FIRM_REGISTERED_ELSEWHERE = (
        "firm_registered_elsewhere",
        (409,),
        "该统一社会信用代码已由另一门户登记",
        "this credit code is registered by another portal",
    )
    MATCHING_NOT_CONSENTED = (
        "matching_not_consented",
        (409,),
        "企业未同意参与匹配（consent_matching 为 false）",
        "the firm has not consented to matching (consent_matching is false)",
    )
    MATCHING_UNAVAILABLE = (
        "matching_unavailable",
        (503,),
        "匹配服务不可用，且没有可作为过期结果返回的上次回答",
        "the matching service is down and no earlier answer is held to serve stale",
    )
    NOT_ELIGIBLE = (
        "not_eligible",
        (422,),
        "企业不满足该产品的准入条件；unmet 列出缺少的条件",
        "the firm does not meet the product's criteria; `unmet` lists what it lacks",
    )
    APPLICATION_OPEN = (
        "application_open",
        (409,),
        "该企业对此产品已有未结申请",
        "the firm already has an open application to this product",
    )
    INVALID_TRANSITION = (
        "invalid_transition",
        (409,),
        "当前状态不允许此操作（例如已决定的申请再次决定）",
        "not allowed in the current state (e.g. deciding an application already decided)",
    )

    # --- webhooks ----------------------------------------------------------------------------
    TOO_MANY_ENDPOINTS = (
        "too_many_endpoints",
        (409,),
        "该主体的 Webhook 端点已达上限",
        "the principal has as many webhook endpoints as allowed",
    )
    UNSAFE_WEBHOOK_URL = (
        "unsafe_webhook_url",
        (422,),
        "Webhook 地址指向内网或无法解析",
        "the webhook URL points to a private address or cannot be resolved",
    )
    EVENT_TYPE_NOT_RECEIVED = (
        "event_type_not_received",
        (422,),
        "该端点未订阅此事件类型，或该密钥的角色不会收到此类事件",
        "the endpoint does not subscribe to this event type, or the key's role is never sent it",
    )

    # --- models and training -----------------------------------------------------------------
    TRAINING_IN_PROGRESS = (
        "training_in_progress",
        (409,),
        "已有模型在训练；job_id 指向该任务",
        "a model is being trained; `job_id` names that job",
    )
    TRAINING_REFUSED = (
        "training_refused",
        (422,),
        "训练数据不足或不可用",
        "not enough (or no usable) training data",
    )
    NO_CHAMPION = (
        "no_champion",
        (404,),
        "尚无已上线的模型",
        "no model has been promoted yet",
    )
    NO_PREVIOUS_MODEL = (
        "no_previous_model",
        (409,),
        "没有可回滚到的更早模型",
        "there is no earlier model to roll back to",
    )
    JOB_NOT_FOUND = ("job_not_found", (404,), "训练任务不存在", "no such training job")
    JOB_NOT_OWNED = (
        "job_not_owned",
        (409,),
        "训练任务由另一执行者运行",
        "the training job is run by another runner",
        True,
    )
    JOB_FINISHED = (
        "job_finished",
        (409,),
        "训练任务已结束",
        "the training job has ended",
        True,
    )
    CATALOGUE_UNKNOWN = (
        "catalogue_unknown",
        (409,),
        "匹配服务尚未见过该产品目录版本（网关随即补发产品）",
        "the matching service has not seen this catalogue version (the gateway sends it)",
        True,
    )

    # --- dependencies ------------------------------------------------------------------------
    DATABASE_UNAVAILABLE = (
        "database_unavailable",
        (503,),
        "数据库暂不可用；按 Retry-After 重试",
        "the database is unavailable; retry after Retry-After seconds",
    )
    REGISTRY_UNAVAILABLE = (
        "registry_unavailable",
        (503,),
        "登记服务暂不可用；按 Retry-After 重试",
        "the registry service is unavailable; retry after Retry-After seconds",
    )

    # --- official registers ------------------------------------------------------------------
    UNSUPPORTED_MEDIA_TYPE = (
        "unsupported_media_type",
        (415,),
        "请求体的媒体类型不受此端点支持（Content-Type 列出可用的类型）",
        "the body's media type is not one this endpoint reads (see its Content-Type options)",
    )
    UNKNOWN_COLUMN = (
        "unknown_column",
        (422,),
        "CSV 表头含有该名录没有的列",
        "the CSV header names a column the register does not have",
    )
    INVALID_REGISTER_LINE = (
        "invalid_register_line",
        (422,),
        "名录上传的某一行无效；本次上传未发布，已接收的批次保留，修正后用同一 upload_id 重发",
        "a line of a register upload is invalid; nothing is published, the batches before it "
        "are kept: fix the file and resend it with the same upload_id",
    )
    EMPTY_REGISTER_UPLOAD = (
        "empty_register_upload",
        (422,),
        "替换上传没有一行有效，发布它会清空名录",
        "a replacing upload without one valid line would empty the register",
    )
    UPLOAD_CONFLICT = (
        "upload_conflict",
        (409,),
        "该 upload_id 已发布，且这次发送的行不同",
        "this upload_id was published, with other lines than the ones sent now",
    )
    UPLOAD_EXPIRED = (
        "upload_expired",
        (409,),
        "该 upload_id 的上传长时间未完成，已过期，暂存的行已删除："
        "请用新的 upload_id 重新发送整个文件",
        "this upload_id was abandoned unpublished and expired, its staged lines deleted: send "
        "the whole file again with a new upload_id",
    )
    UPLOAD_MODE_DIFFERS = (
        "upload_mode_differs",
        (409,),
        "该 upload_id 以另一种方式（替换或追加）开始",
        "this upload_id was started in the other mode (replace or append)",
    )
    UPLOAD_AS_OF_DIFFERS = (
        "upload_as_of_differs",
        (409,),
        "该 upload_id 以另一个名单日期（as_of）开始",
        "this upload_id was started with another list date (as_of)",
    )
    # --- internal calls between services -----------------------------------------------------
    INTERNAL_TOKEN_REQUIRED = (
        "internal_token_required",
        (401,),
        "内部接口缺少或给错 X-Internal-Token",
        "an internal endpoint without the right X-Internal-Token",
        True,
    )
    PRINCIPAL_REQUIRED = (
        "principal_required",
        (401,),
        "内部调用缺少 X-Principal-Id",
        "an internal call without X-Principal-Id",
        True,
    )
    UNKNOWN_PRINCIPAL = (
        "unknown_principal",
        (401,),
        "内部调用给出的主体不存在",
        "an internal call naming a principal that does not exist",
        True,
    )


PUBLIC_CODES: tuple[ErrorCode, ...] = tuple(code for code in ErrorCode if not code.internal)
