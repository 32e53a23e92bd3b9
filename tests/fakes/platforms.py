"""A fake of the four messaging platforms' HTTP APIs for tests: a real threaded HTTP server on
127.0.0.1 (ephemeral port) that checks every request the way the platform does and answers with the
documented success and error bodies (shared/reference/channels.md).

Routes
- Telegram Bot API: `GET|POST /bot<token>/<method>` — getMe, setWebhook, deleteWebhook, sendMessage,
  sendPhoto, sendVideo, sendAudio, sendDocument, sendChatAction, answerCallbackQuery. Unknown token →
  401; limits (text 4096, caption 1024, callback_data 1–64 bytes, one action per inline button,
  setWebhook https URL and secret_token charset) → 400 `Bad Request: …`. A chat upgraded to a supergroup
  (`migrate_telegram_chat(old, new)`) answers every call for the old id with 400 and
  `parameters.migrate_to_chat_id`.
- Graph: `POST /<version>/<phone number id>/messages` (WhatsApp, `Authorization: Bearer`),
  `POST /<version>/me/messages?access_token=…` (Messenger and Instagram), `GET /<version>/<id>` (an
  account's own node). A wrong version → 400; a token that does not own the id → 190; shape errors →
  Graph `100` "Invalid parameter" envelopes. WhatsApp mark-read (`status: read`, optional
  `typing_indicator: {"type": "text"}`) takes only the wamid of a received message, never one the fake
  sent. A private reply (`recipient.comment_id`, Messenger/Instagram) needs a comment the fake knows
  (`add_comment`): one per comment (a second → 10900), within 7 days of it (older → 10903).

Use
    fake = fake_platforms                       # the pytest fixture; settings point at it
    fake.add_telegram_bot("123:abc", bot_id=123, username="testbot")
    fake.add_graph_account("EAAG…", "106540352242922", platform="whatsapp", name="Shop")
    fake.script("telegram", "sendMessage", "rate_limited", retry_after=2)   # the next matching call fails
    …
    fake.sent("telegram")  → the accepted sends (platform, method/path, body, answer)
    fake.requests          → every request, accepted or not (with the answer's status)
    fake.env()             → environment for a worker subprocess (API bases pointing here, the same
                             RELAY_ENCRYPTION_KEYS as the fixture's settings)

Scripted failures (`script(platform, match, failure, times=1, **options)`; `match` is a Telegram method
or a suffix of the Graph path, e.g. "messages"; None matches every call of the platform):
  telegram: rate_limited (retry_after=), blocked, bad_token, server_error, hang (seconds=)
  whatsapp: outside_window (131047), rate_limited (130429), bad_token (190), undeliverable (131026),
            server_error, hang
  messenger / instagram: outside_window (10/2018278), rate_limited (613), bad_token (190),
            unavailable (551), server_error, hang
A `hang` answers only after `seconds` (default 5): the request arrived, the answer is late — what a
read timeout looks like from the sending side.
"""

from __future__ import annotations

import http.server
import itertools
import json
import re
import threading
import time
from collections import deque
from urllib.parse import parse_qs, urlparse

import pytest

GRAPH_VERSION_DEFAULT = "v23.0"
SECRET_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
CHAT_ACTIONS = {"typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice",
                "upload_document", "choose_sticker", "find_location", "record_video_note", "upload_video_note"}
TELEGRAM_MEDIA = {"sendphoto": "photo", "sendvideo": "video", "sendaudio": "audio", "senddocument": "document"}
MESSAGING_TYPES = {"RESPONSE", "UPDATE", "MESSAGE_TAG"}


class Rejected(Exception):
    """A request the platform would refuse: (HTTP status, body)."""

    def __init__(self, status: int, body: dict):
        super().__init__(body)
        self.status, self.body = status, body


def tg_bad(description: str) -> Rejected:
    return Rejected(400, {"ok": False, "error_code": 400, "description": f"Bad Request: {description}"})


def graph_error(code: int, message: str, *, subcode: int | None = None, status: int = 400,
                details: str | None = None) -> Rejected:
    error = {"message": f"(#{code}) {message}", "type": "OAuthException", "code": code,
             "fbtrace_id": "AbCdEfGhIjK"}
    if subcode is not None:
        error["error_subcode"] = subcode
    if details is not None:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return Rejected(status, {"error": error})


def invalid(message: str) -> Rejected:
    return graph_error(100, f"Invalid parameter: {message}")


FAILURES = {
    "telegram": {
        "rate_limited": lambda o: Rejected(429, {
            "ok": False, "error_code": 429, "description": f"Too Many Requests: retry after {o.get('retry_after', 1)}",
            "parameters": {"retry_after": o.get("retry_after", 1)}}),
        "blocked": lambda o: Rejected(403, {"ok": False, "error_code": 403,
                                            "description": "Forbidden: bot was blocked by the user"}),
        "bad_token": lambda o: Rejected(401, {"ok": False, "error_code": 401, "description": "Unauthorized"}),
        "server_error": lambda o: Rejected(502, {"ok": False, "error_code": 502, "description": "Bad Gateway"}),
    },
    "whatsapp": {
        "outside_window": lambda o: graph_error(131047, "Re-engagement message", details=(
            "Message failed to send because more than 24 hours have passed since the customer last replied "
            "to this number.")),
        "rate_limited": lambda o: graph_error(130429, "Rate limit hit", status=429),
        "bad_token": lambda o: graph_error(190, "Error validating access token: Session has expired", status=401),
        "undeliverable": lambda o: graph_error(131026, "Message undeliverable", details="Message Undeliverable."),
        "server_error": lambda o: Rejected(500, {"error": {"message": "An unknown error occurred", "code": 1,
                                                          "type": "OAuthException", "fbtrace_id": "x"}}),
    },
    "messenger": {
        "outside_window": lambda o: graph_error(10, "This message is sent outside of allowed window.", subcode=2018278),
        "rate_limited": lambda o: graph_error(613, "Calls to this api have exceeded the rate limit."),
        "bad_token": lambda o: graph_error(190, "Error validating access token: Session has expired", status=401),
        "unavailable": lambda o: graph_error(551, "This person isn't available right now.", subcode=1545041),
        "server_error": lambda o: Rejected(500, {"error": {"message": "An unknown error occurred", "code": 2,
                                                          "type": "OAuthException", "fbtrace_id": "x"}}),
    },
}
FAILURES["instagram"] = FAILURES["messenger"]


class FakePlatforms:
    def __init__(self, graph_version: str = GRAPH_VERSION_DEFAULT):
        self.graph_version = graph_version
        self.bots: dict[str, dict] = {}  # bot token -> getMe result
        self.graph_accounts: dict[str, dict] = {}  # access token -> {"id", "platform", "name"}
        self.webhooks: dict[str, dict] = {}  # bot token -> last setWebhook body
        self.migrated_chats: dict[str, int] = {}  # Telegram chat id (as str) -> the supergroup's id
        self.comments: dict[str, dict] = {}  # comment id -> {"author", "created_at"}
        self.private_replies: dict[str, str] = {}  # comment id -> message id of its private reply
        self.sent_wamids: set[str] = set()
        self.requests: list[dict] = []
        self._scripts: deque = deque()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.url = ""
        from cryptography.fernet import Fernet

        self.encryption_key = Fernet.generate_key().decode()  # so credentials can be stored (DEBUG is off)

    # -- setup ------------------------------------------------------------------------------------
    def add_telegram_bot(self, token: str, *, bot_id: int = 123456789, first_name: str = "TestBot",
                         username: str = "testbot") -> None:
        self.bots[token] = {"id": bot_id, "is_bot": True, "first_name": first_name, "username": username}

    def add_graph_account(self, token: str, object_id: str, *, platform: str, name: str = "Test Page") -> None:
        """`platform`: whatsapp (object = phone number id), messenger (page id), instagram (IG user id)."""
        self.graph_accounts[token] = {"id": object_id, "platform": platform, "name": name}

    def migrate_telegram_chat(self, old_chat_id, new_chat_id: int) -> None:
        """The group `old_chat_id` became the supergroup `new_chat_id`."""
        self.migrated_chats[str(old_chat_id)] = new_chat_id

    def add_comment(self, comment_id: str, *, author: str = "", age_days: float = 0.0) -> None:
        """A comment on the account's media, made `age_days` ago by `author` (IGSID / PSID)."""
        self.comments[comment_id] = {"author": author, "created_at": time.time() - age_days * 86400}

    def script(self, platform: str, match: str | None, failure: str, *, times: int = 1, **options) -> None:
        """The next `times` calls of `platform` matching `match` answer with `failure` (see the module doc)."""
        if failure != "hang" and failure not in FAILURES[platform]:
            raise ValueError(f"no scripted failure {failure!r} for {platform}")
        with self._lock:
            self._scripts.append({"platform": platform, "match": match, "failure": failure, "left": times,
                                  "options": options})

    # -- reading what happened ----------------------------------------------------------------------
    def sent(self, platform: str | None = None) -> list[dict]:
        """Accepted calls that send something (not getMe/setWebhook/GET), oldest first."""
        with self._lock:
            return [r for r in self.requests if r["status"] == 200 and r.get("sends")
                    and (platform is None or r["platform"] == platform)]

    def env(self) -> dict:
        return {"RELAY_TELEGRAM_API_BASE": self.url, "RELAY_META_GRAPH_BASE": self.url,
                "RELAY_META_GRAPH_VERSION": self.graph_version, "RELAY_PUBLIC_URL": "https://relay.example.com",
                "RELAY_ENCRYPTION_KEYS": self.encryption_key}

    # -- serving --------------------------------------------------------------------------------------
    def start(self) -> FakePlatforms:
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, body = outer.handle(self.command, self.path, dict(self.headers), raw)
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                try:
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting (hang)
                    pass

            do_GET = do_POST = do_DELETE = _serve

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def handle(self, method: str, raw_path: str, headers: dict, raw: bytes) -> tuple[int, dict]:
        parsed = urlparse(raw_path)
        query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
        record = {"method": method, "path": parsed.path, "query": query, "headers": headers, "raw": raw,
                  "json": None, "platform": None, "sends": False, "status": None, "answer": None, "at": time.time()}
        with self._lock:  # recorded on arrival: a hanging call is visible while it hangs
            self.requests.append(record)
        try:
            if parsed.path.startswith("/bot"):
                record["platform"] = "telegram"
                status, body = self._telegram(method, parsed.path, query, headers, raw, record)
            else:
                status, body = self._graph(method, parsed.path, query, headers, raw, record)
        except Rejected as exc:
            status, body = exc.status, exc.body
        with self._lock:
            record.update(status=status, answer=body)
        return status, body

    def _scripted(self, platform: str, name: str) -> None:
        with self._lock:
            for entry in self._scripts:
                if entry["platform"] == platform and (entry["match"] is None or name.endswith(entry["match"])):
                    entry["left"] -= 1
                    if entry["left"] <= 0:
                        self._scripts.remove(entry)
                    break
            else:
                return
        if entry["failure"] == "hang":
            time.sleep(entry["options"].get("seconds", 5))
            return
        raise FAILURES[platform][entry["failure"]](entry["options"])

    # -- Telegram -------------------------------------------------------------------------------------
    def _telegram(self, method, path, query, headers, raw, record) -> tuple[int, dict]:
        match = re.fullmatch(r"/bot([^/]+)/([A-Za-z]+)", path)
        if not match:
            raise Rejected(404, {"ok": False, "error_code": 404, "description": "Not Found"})
        token, name = match.group(1), match.group(2).lower()
        if token not in self.bots:
            raise Rejected(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
        data = dict(query)
        if raw:
            if not headers.get("Content-Type", "").startswith("application/json"):
                raise tg_bad("this fake takes JSON bodies only")
            try:
                data.update(json.loads(raw))
            except ValueError:
                raise tg_bad("can't parse JSON") from None
        record["json"], record["name"] = data, name
        self._scripted("telegram", match.group(2))
        bot = self.bots[token]
        if name == "getme":
            return 200, {"ok": True, "result": bot}
        if name == "setwebhook":
            url = data.get("url")
            if not isinstance(url, str):
                raise tg_bad("parameter \"url\" is required")
            if url:
                parts = urlparse(url)
                if parts.scheme != "https" or (parts.port or 443) not in (443, 80, 88, 8443):
                    raise tg_bad("bad webhook: An HTTPS URL must be provided for webhook")
            secret = data.get("secret_token")
            if secret is not None and not SECRET_TOKEN.match(str(secret)):
                raise tg_bad("secret token contains unallowed characters")
            self.webhooks[token] = data
            return 200, {"ok": True, "result": True, "description": "Webhook was set"}
        if name == "deletewebhook":
            self.webhooks.pop(token, None)
            return 200, {"ok": True, "result": True}
        if name == "answercallbackquery":
            if not data.get("callback_query_id"):
                raise tg_bad("parameter \"callback_query_id\" is required")
            if len(str(data.get("text") or "")) > 200:
                raise tg_bad("text is too long")
            record["sends"] = True
            return 200, {"ok": True, "result": True}
        chat_id = data.get("chat_id")
        if not isinstance(chat_id, int | str) or isinstance(chat_id, bool) or chat_id == "":
            raise tg_bad("chat not found")
        if str(chat_id) in self.migrated_chats:
            raise Rejected(400, {"ok": False, "error_code": 400,
                                 "description": "Bad Request: group chat was upgraded to a supergroup chat",
                                 "parameters": {"migrate_to_chat_id": self.migrated_chats[str(chat_id)]}})
        if name == "sendchataction":
            if data.get("action") not in CHAT_ACTIONS:
                raise tg_bad("wrong parameter action in request")
            return 200, {"ok": True, "result": True}
        message = {"message_id": next(self._ids), "from": {"id": bot["id"], "is_bot": True,
                                                           "first_name": bot["first_name"]},
                   "chat": {"id": chat_id, "type": "private"}, "date": int(time.time())}
        if name == "sendmessage":
            text = data.get("text")
            if not isinstance(text, str) or not text.strip():
                raise tg_bad("message text is empty")
            if len(text) > 4096:
                raise tg_bad("message is too long")
            message["text"] = text
        elif name in TELEGRAM_MEDIA:
            field = TELEGRAM_MEDIA[name]
            if not isinstance(data.get(field), str) or not data[field]:
                raise tg_bad(f"there is no {field} in the request")
            if len(str(data.get("caption") or "")) > 1024:
                raise tg_bad("message caption is too long")
            message[field] = {"file_id": f"file-{message['message_id']}"}
        else:
            raise Rejected(404, {"ok": False, "error_code": 404, "description": "Not Found: method not found"})
        self._check_reply_markup(data.get("reply_markup"))
        record["sends"] = True
        return 200, {"ok": True, "result": message}

    @staticmethod
    def _check_reply_markup(markup) -> None:
        if markup is None:
            return
        if not isinstance(markup, dict):
            raise tg_bad("can't parse reply keyboard markup JSON object")
        keyboard = markup.get("inline_keyboard")
        if keyboard is None:
            return
        if not isinstance(keyboard, list) or not all(isinstance(row, list) for row in keyboard):
            raise tg_bad("field \"inline_keyboard\" of the InlineKeyboardMarkup must be an Array of Arrays")
        for row in keyboard:
            for button in row:
                if not isinstance(button, dict) or not isinstance(button.get("text"), str) or not button["text"]:
                    raise tg_bad("can't parse inline keyboard button: Text buttons are unallowed in the "
                                 "inline keyboard")
                actions = [k for k in ("callback_data", "url", "switch_inline_query", "web_app", "login_url", "pay")
                           if k in button]
                if len(actions) != 1:
                    raise tg_bad("can't parse inline keyboard button: exactly one optional field must be used")
                if "callback_data" in button and not 1 <= len(str(button["callback_data"]).encode()) <= 64:
                    raise tg_bad("BUTTON_DATA_INVALID")
                if "url" in button and not str(button["url"]).startswith(("http://", "https://", "tg://")):
                    raise tg_bad("inline keyboard button URL is invalid")

    # -- Graph --------------------------------------------------------------------------------------
    def _graph(self, method, path, query, headers, raw, record) -> tuple[int, dict]:
        parts = [p for p in path.split("/") if p]
        if not parts or parts[0] != self.graph_version:
            raise graph_error(2635, f"Unknown or unsupported API version in {path!r}")
        token = query.get("access_token")
        auth = headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            token = auth[len("Bearer "):]
        account = self.graph_accounts.get(token or "")
        if account is None:
            raise graph_error(190, "Invalid OAuth access token - Cannot parse access token", status=401)
        record["platform"] = account["platform"]
        target = parts[1:]
        if method == "GET" and len(target) == 1:
            if target[0] != account["id"]:
                raise graph_error(100, f"Object with ID '{target[0]}' does not exist, cannot be loaded due to "
                                  "missing permissions, or does not support this operation", subcode=33)
            self._scripted(account["platform"], target[0])
            if account["platform"] == "whatsapp":
                return 200, {"verified_name": account["name"], "display_phone_number": "15550783881",
                             "id": account["id"]}
            if account["platform"] == "instagram":
                return 200, {"username": account["name"], "id": account["id"]}
            return 200, {"name": account["name"], "id": account["id"]}
        if method != "POST" or len(target) != 2 or target[1] != "messages":
            raise graph_error(100, "Unsupported request - method type or path")
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            raise invalid("the body is not JSON") from None
        if not isinstance(body, dict):
            raise invalid("the body must be a JSON object")
        record["json"] = body
        if account["platform"] == "whatsapp":
            if not auth.startswith("Bearer "):
                raise graph_error(190, "WhatsApp calls take the token in Authorization: Bearer", status=401)
            if target[0] != account["id"]:
                raise graph_error(100, "the token does not own this phone number id", subcode=33)
            self._scripted("whatsapp", "/".join(target))
            return self._whatsapp(body, record)
        if target[0] not in ("me", account["id"]):
            raise graph_error(100, "the token does not own this page", subcode=33)
        self._scripted(account["platform"], "/".join(target))
        return self._messenger(body, record, instagram=account["platform"] == "instagram")

    def _whatsapp(self, body: dict, record: dict) -> tuple[int, dict]:
        if body.get("messaging_product") != "whatsapp":
            raise invalid("messaging_product must be \"whatsapp\"")
        if body.get("status") == "read":
            message_id = str(body.get("message_id") or "")
            if not message_id.startswith("wamid.") or message_id in self.sent_wamids:
                raise invalid("message_id must be the wamid of a message received from the user")
            if "typing_indicator" in body and body["typing_indicator"] != {"type": "text"}:
                raise invalid("typing_indicator.type must be \"text\"")
            if set(body) - {"messaging_product", "status", "message_id", "typing_indicator"}:
                raise invalid("a read receipt holds messaging_product, status, message_id, typing_indicator")
            return 200, {"success": True}
        to = body.get("to")
        if not isinstance(to, str) or not re.fullmatch(r"\+?\d{6,15}", to):
            raise invalid("to must be a phone number in international form")
        kind = body.get("type", "text")
        if kind == "text":
            text = (body.get("text") or {}).get("body")
            if not isinstance(text, str) or not text or len(text) > 4096:
                raise invalid("text.body must hold 1 to 4096 characters")
        elif kind == "interactive":
            self._whatsapp_interactive(body.get("interactive"))
        elif kind in ("image", "video", "audio", "document", "sticker"):
            media = body.get(kind)
            if not isinstance(media, dict) or bool(media.get("link")) == bool(media.get("id")):
                raise invalid(f"{kind} needs exactly one of link or id")
            if kind == "audio" and "caption" in media:
                raise invalid("audio has no caption")
        elif kind == "template":
            template = body.get("template") or {}
            if not template.get("name") or not (template.get("language") or {}).get("code"):
                raise invalid("template.name and template.language.code are required")
        else:
            raise invalid(f"type {kind!r}")
        record["sends"] = True
        wamid = f"wamid.FAKE{next(self._ids):08d}"
        self.sent_wamids.add(wamid)
        return 200, {"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to.lstrip("+")}],
                     "messages": [{"id": wamid}]}

    @staticmethod
    def _whatsapp_interactive(interactive) -> None:
        if not isinstance(interactive, dict):
            raise invalid("interactive must be an object")
        kind = interactive.get("type")
        body_text = (interactive.get("body") or {}).get("text")
        if not isinstance(body_text, str) or not body_text or len(body_text) > 1024:
            raise invalid("interactive.body.text must hold 1 to 1024 characters")
        action = interactive.get("action") or {}
        if kind == "button":
            buttons = action.get("buttons")
            if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
                raise invalid("action.buttons must hold 1 to 3 buttons")
            titles = set()
            for button in buttons:
                reply = button.get("reply") if isinstance(button, dict) else None
                if button.get("type") != "reply" or not isinstance(reply, dict):
                    raise invalid("button.type must be reply")
                if not reply.get("id") or len(reply["id"]) > 256:
                    raise invalid("reply.id must hold 1 to 256 characters")
                if not reply.get("title") or len(reply["title"]) > 20:
                    raise invalid("reply.title must hold 1 to 20 characters")
                if reply["title"] in titles:
                    raise invalid("button titles must be unique")
                titles.add(reply["title"])
        elif kind == "list":
            if not action.get("button") or len(action["button"]) > 20:
                raise invalid("action.button must hold 1 to 20 characters")
            sections = action.get("sections")
            rows = [row for s in sections or [] for row in (s.get("rows") or [])] if isinstance(sections, list) else []
            if not rows or len(rows) > 10:
                raise invalid("a list holds 1 to 10 rows")
            for row in rows:
                if not row.get("id") or len(row["id"]) > 200 or not row.get("title") or len(row["title"]) > 24:
                    raise invalid("row id (≤200) and title (≤24) are required")
        elif kind == "cta_url":
            params = action.get("parameters") or {}
            if action.get("name") != "cta_url" or not params.get("url") or not params.get("display_text") \
                    or len(params["display_text"]) > 20:
                raise invalid("cta_url needs name, url and display_text (≤20)")
        else:
            raise invalid(f"interactive.type {kind!r}")

    def _messenger(self, body: dict, record: dict, *, instagram: bool) -> tuple[int, dict]:
        recipient = body.get("recipient")
        if not isinstance(recipient, dict) or not (recipient.get("id") or recipient.get("comment_id")):
            raise invalid("recipient.id is required")
        comment_id = recipient.get("comment_id")
        if comment_id is not None:
            self._check_private_reply(body, str(comment_id))
        if "messaging_type" in body and body["messaging_type"] not in MESSAGING_TYPES:
            raise invalid("messaging_type")
        if body.get("messaging_type") == "MESSAGE_TAG" and not body.get("tag"):
            raise invalid("tag is required with MESSAGE_TAG")
        if "sender_action" in body:
            if "message" in body or body["sender_action"] not in ("typing_on", "typing_off", "mark_seen"):
                raise invalid("sender_action is sent alone: typing_on, typing_off or mark_seen")
            return 200, {"recipient_id": recipient.get("id")}
        message = body.get("message")
        if not isinstance(message, dict) or not ("text" in message or "attachment" in message):
            raise invalid("message needs text or attachment")
        if "text" in message:
            text = message["text"]
            if not isinstance(text, str) or not text:
                raise invalid("message.text must be a non-empty string")
            if instagram and len(text.encode()) > 1000:
                raise invalid("Instagram text holds at most 1000 bytes")
            if not instagram and len(text) > 2000:
                raise graph_error(100, "Length of param message[text] must be less than or equal to 2000")
        if "attachment" in message:
            self._check_attachment(message["attachment"])
        replies = message.get("quick_replies")
        if replies is not None:
            if not isinstance(replies, list) or not 1 <= len(replies) <= 13:
                raise invalid("quick_replies holds 1 to 13 items")
            for reply in replies:
                if reply.get("content_type") == "text":
                    if not reply.get("title") or len(reply["title"]) > 20:
                        raise invalid("quick reply title must hold 1 to 20 characters")
                    if not reply.get("payload") or len(str(reply["payload"])) > 1000:
                        raise invalid("quick reply payload must hold 1 to 1000 characters")
                elif reply.get("content_type") not in ("user_phone_number", "user_email") or instagram:
                    raise invalid("quick reply content_type")
        record["sends"] = True
        prefix = "aWdfZAG1faXRlbTo" if instagram else "m_"
        message_id = f"{prefix}FAKE{next(self._ids):08d}"
        if comment_id is not None:
            with self._lock:
                if str(comment_id) in self.private_replies:  # lost a race with a concurrent reply
                    raise graph_error(10900, "Activity already replied to")
                self.private_replies[str(comment_id)] = message_id
            return 200, {"recipient_id": self.comments[str(comment_id)]["author"], "message_id": message_id}
        return 200, {"recipient_id": recipient.get("id") or "", "message_id": message_id}

    def _check_private_reply(self, body: dict, comment_id: str) -> None:
        """A private reply: to a comment that exists, once, within 7 days of it, with a message."""
        if body["recipient"].get("id"):
            raise invalid("recipient takes one of id or comment_id")
        if "sender_action" in body:
            raise invalid("a private reply sends a message, not a sender_action")
        comment = self.comments.get(comment_id)
        if comment is None:
            raise graph_error(100, f"Object with ID '{comment_id}' does not exist, cannot be loaded due to "
                              "missing permissions, or does not support this operation", subcode=33)
        if comment_id in self.private_replies:
            raise graph_error(10900, "Activity already replied to")
        if time.time() - comment["created_at"] > 7 * 86400:
            raise graph_error(10903, "This activity can't be replied to")

    def _check_attachment(self, attachment) -> None:
        if not isinstance(attachment, dict):
            raise invalid("attachment must be an object")
        kind, payload = attachment.get("type"), attachment.get("payload")
        if not isinstance(payload, dict):
            raise invalid("attachment.payload must be an object")
        if kind in ("image", "video", "audio", "file"):
            if bool(payload.get("url")) == bool(payload.get("attachment_id")):
                raise invalid("attachment payload needs url or attachment_id")
            return
        if kind != "template":
            raise invalid(f"attachment.type {kind!r}")
        template = payload.get("template_type")
        if template == "button":
            if not payload.get("text") or len(payload["text"]) > 640:
                raise invalid("button template text must hold 1 to 640 characters")
            self._check_buttons(payload.get("buttons"), required=True)
        elif template == "generic":
            elements = payload.get("elements")
            if not isinstance(elements, list) or not 1 <= len(elements) <= 10:
                raise invalid("generic template holds 1 to 10 elements")
            for element in elements:
                if not element.get("title") or len(element["title"]) > 80 or len(element.get("subtitle") or "") > 80:
                    raise invalid("element title (1–80) and subtitle (≤80)")
                self._check_buttons(element.get("buttons"), required=False)
        else:
            raise invalid(f"template_type {template!r}")

    @staticmethod
    def _check_buttons(buttons, *, required: bool) -> None:
        if buttons is None and not required:
            return
        if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
            raise invalid("buttons holds 1 to 3 buttons")
        for button in buttons:
            kind = button.get("type")
            if not button.get("title") or len(button["title"]) > 20:
                raise invalid("button title must hold 1 to 20 characters")
            if kind == "postback" and (not button.get("payload") or len(str(button["payload"])) > 1000):
                raise invalid("postback payload must hold 1 to 1000 characters")
            elif kind == "web_url" and not str(button.get("url") or "").startswith(("http://", "https://")):
                raise invalid("web_url needs an http(s) url")
            elif kind == "phone_number" and not str(button.get("payload") or "").lstrip("+").isdigit():
                raise invalid("phone_number payload must be a phone number")
            elif kind not in ("postback", "web_url", "phone_number"):
                raise invalid(f"button type {kind!r}")


@pytest.fixture
def fake_platforms(settings):
    """A running FakePlatforms; Relay's settings point at it (Telegram and Graph bases, Graph version,
    an https public URL for setWebhook, an encryption key for credentials). Stopped after the test."""
    fake = FakePlatforms(graph_version=settings.RELAY_META_GRAPH_VERSION).start()
    for name, value in fake.env().items():
        setattr(settings, name, value.split(",") if name == "RELAY_ENCRYPTION_KEYS" else value)
    try:
        yield fake
    finally:
        fake.stop()
