"""Platform webhook bodies shaped like the samples in shared/reference/channels.md (§1-§5), signed in
the test the way the platforms sign them, and the helpers that post them to Relay."""

import hashlib
import hmac
import itertools
import json

from rest_framework.test import APIClient

APP_SECRET = "meta-app-secret-for-tests"
VERIFY_TOKEN = "verify-me"
TELEGRAM_SECRET = "s3cr3t_Token-1"

_ids = itertools.count(1)


def sign(raw: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def post_meta(path: str, body, *, signature=None, secret: str = APP_SECRET):
    """POST a Meta delivery (`path` meta | whatsapp) signed over the exact bytes sent."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"HTTP_X_HUB_SIGNATURE_256": signature if signature is not None else sign(raw, secret)}
    return APIClient().post(f"/v1/platform-webhooks/{path}", raw, content_type="application/json", **headers)


def post_telegram(account_id: str, update, *, secret: str | None = TELEGRAM_SECRET):
    raw = update if isinstance(update, bytes) else json.dumps(update).encode()
    headers = {"HTTP_X_TELEGRAM_BOT_API_SECRET_TOKEN": secret} if secret is not None else {}
    return APIClient().post(f"/v1/platform-webhooks/telegram/{account_id}", raw, content_type="application/json",
                            **headers)


# -- Telegram (§1) ----------------------------------------------------------------------------------

def tg_message(text: str, *, update_id=None, user_id=987654321, first_name="Ann"):
    return {"update_id": update_id or 10000 + next(_ids),
            "message": {"message_id": next(_ids), "date": 1718000000, "text": text,
                        "from": {"id": user_id, "is_bot": False, "first_name": first_name, "username": "ann",
                                 "language_code": "en"},
                        "chat": {"id": user_id, "first_name": first_name, "username": "ann", "type": "private"}}}


def tg_callback(data: str, *, update_id=None, user_id=987654321, query_id="4382bfdwdsb323b2d9"):
    return {"update_id": update_id or 10000 + next(_ids),
            "callback_query": {"id": query_id, "chat_instance": "-1234567890123", "data": data,
                               "from": {"id": user_id, "is_bot": False, "first_name": "Ann"},
                               "message": {"message_id": 42, "date": 1718000000, "text": "Pick one:",
                                           "chat": {"id": user_id, "type": "private"}}}}


def tg_edited(text: str, *, user_id=987654321):
    return {"update_id": 10000 + next(_ids),
            "edited_message": {"message_id": 7, "date": 1718000000, "edit_date": 1718000050, "text": text,
                               "from": {"id": user_id, "is_bot": False, "first_name": "Ann"},
                               "chat": {"id": user_id, "type": "private"}}}


# -- WhatsApp (§2) ----------------------------------------------------------------------------------

def wa_envelope(phone_number_id: str, *, messages=(), statuses=(), contacts=None):
    value = {"messaging_product": "whatsapp",
             "metadata": {"display_phone_number": "15550783881", "phone_number_id": phone_number_id}}
    if messages:
        value["contacts"] = contacts if contacts is not None else [
            {"profile": {"name": "Sheena Nelson"}, "wa_id": messages[0]["from"]}]
        value["messages"] = list(messages)
    if statuses:
        value["statuses"] = list(statuses)
    return {"object": "whatsapp_business_account",
            "entry": [{"id": "WABA_ID", "changes": [{"field": "messages", "value": value}]}]}


def wa_text(text: str, *, wamid=None, sender="16505551234"):
    return {"from": sender, "id": wamid or f"wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRB{next(_ids)}",
            "timestamp": "1749416383", "type": "text", "text": {"body": text}}


def wa_button_reply(reply_id: str, title: str, *, sender="16505551234", context_id="wamid.SENT1"):
    return {"from": sender, "id": f"wamid.B{next(_ids)}", "timestamp": "1749416400", "type": "interactive",
            "context": {"from": "15550783881", "id": context_id},
            "interactive": {"type": "button_reply", "button_reply": {"id": reply_id, "title": title}}}


def wa_list_reply(row_id: str, title: str, *, sender="16505551234"):
    return {"from": sender, "id": f"wamid.L{next(_ids)}", "timestamp": "1749416401", "type": "interactive",
            "interactive": {"type": "list_reply",
                            "list_reply": {"id": row_id, "title": title, "description": "Fits 38-40"}}}


def wa_status(wamid: str, status: str, *, recipient="16505551234"):
    item = {"id": wamid, "status": status, "timestamp": "1698903217", "recipient_id": recipient,
            "conversation": {"id": "62d207825745e6597de71d002affa326", "origin": {"type": "service"}},
            "pricing": {"billable": True, "pricing_model": "CBP", "category": "service"}}
    if status == "failed":
        item["errors"] = [{"code": 131026, "title": "Message undeliverable", "message": "Message undeliverable",
                           "error_data": {"details": "Message Undeliverable."}}]
    return item


# -- Messenger (§3) and Instagram (§4) ------------------------------------------------------------

def page_envelope(page_id: str, *messaging, obj="page"):
    return {"object": obj, "entry": [{"id": page_id, "time": 1458692752478, "messaging": list(messaging)}]}


def fb_message(page_id: str, text: str, *, psid="PSID-1", mid=None, quick_reply=None, is_echo=False, **extra):
    message = {"mid": mid or f"m_1457764197618:41d102a3e1ae206a38{next(_ids)}", "text": text, **extra}
    if quick_reply is not None:
        message["quick_reply"] = {"payload": quick_reply}
    if is_echo:
        message["is_echo"] = True
    sender, recipient = (page_id, psid) if is_echo else (psid, page_id)
    return {"sender": {"id": sender}, "recipient": {"id": recipient}, "timestamp": 1458692752478, "message": message}


def fb_postback(page_id: str, payload: str, *, psid="PSID-1", title="Start"):
    return {"sender": {"id": psid}, "recipient": {"id": page_id}, "timestamp": 1458692752478,
            "postback": {"mid": f"m_MESSAGE-ID{next(_ids)}", "title": title, "payload": payload}}


def fb_delivery(page_id: str, mids, *, psid="PSID-1"):
    return {"sender": {"id": psid}, "recipient": {"id": page_id}, "timestamp": 1458692752478,
            "delivery": {"mids": list(mids), "watermark": 1458668856253}}


def fb_read(page_id: str, watermark_ms: int, *, psid="PSID-1"):
    return {"sender": {"id": psid}, "recipient": {"id": page_id}, "timestamp": 1458692752478,
            "read": {"watermark": watermark_ms}}


def ig_comment(ig_id: str, text: str, *, comment_id=None, author="IGSID-1", username="ann_shop",
               media_id="18172143295349192", parent_id=None):
    value = {"id": comment_id or f"1791969762611{next(_ids)}", "text": text,
             "from": {"id": author, "username": username, "self_ig_scoped_id": "2105722729836161"},
             "media": {"id": media_id, "media_product_type": "FEED"}}
    if parent_id:
        value["parent_id"] = parent_id
    return {"object": "instagram",
            "entry": [{"id": ig_id, "time": 1755779280, "changes": [{"field": "comments", "value": value}]}]}
