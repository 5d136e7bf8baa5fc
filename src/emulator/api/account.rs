//! `/authorize`, `/disable_access_token`, `account/info`, `account/package`, `package/listing`.
use serde_json::{json, Value};

use super::{unknown_action, Ctx, Outcome, Reply};
use crate::emulator::config::Quirk;
use crate::emulator::reply::now_string;
use crate::emulator::state::unix_now;
use crate::emulator::store::Account;

const BAD_KEYS: &str = "Could not authenticate user. The key pair may be invalid or your account may be locked from too many failed logins.";
const BAD_TOKEN: &str = "Could not validate access_token, please reauthenticate or try again.";
/// Failed logins from one IP before it is banned.
const MAX_FAILURES: i64 = 5;
/// How long failures count and a ban lasts.
const BAN_WINDOW_SECS: i64 = 24 * 3600;

/// `/authorize`: key pair in, token out; kills older tokens; counts failures per IP, logging
/// each failure with the count so far and each ban with its end, so that whoever runs the
/// emulator sees what a real host would silently hold against an address.
pub async fn authorize(ctx: &Ctx) -> Outcome {
    let key1 = ctx.params.get("key1").unwrap_or("");
    if key1.chars().count() != 64 {
        return Err(Reply::err(
            "Please provide key1. It must be 64 characters in length.",
        ));
    }
    let key2 = ctx.params.get("key2").unwrap_or("");
    if key2.chars().count() != 64 {
        return Err(Reply::err(
            "Please provide key2. It must be 64 characters in length.",
        ));
    }
    let st = &ctx.st;
    let now = unix_now();
    let ban = st.args.quirk(Quirk::LoginBan);
    let ip = &ctx.ip;
    if ban {
        let (failures, last) = st.store.login_failures(ip, now, BAN_WINDOW_SECS)?;
        if failures >= MAX_FAILURES {
            log::warn!(
                "login from {ip} refused: banned until {}",
                local_time(last + BAN_WINDOW_SECS)
            );
            return Err(Reply::err(BAD_KEYS));
        }
    }
    let Some(account) = st.store.account_by_keys(key1, key2)? else {
        if !ban {
            log::warn!("failed login from {ip} (not counted: the login-ban quirk is off)");
            return Err(Reply::err(BAD_KEYS));
        }
        let failures = st.store.add_login_failure(ip, now, BAN_WINDOW_SECS)?;
        log::warn!(
            "failed login from {ip}: {failures} of {MAX_FAILURES} within {} h",
            BAN_WINDOW_SECS / 3600
        );
        if failures == MAX_FAILURES {
            log::warn!(
                "{ip} is banned from logging in until {} ({MAX_FAILURES} failed logins)",
                local_time(now + BAN_WINDOW_SECS)
            );
        }
        return Err(Reply::err(BAD_KEYS));
    };
    let token: String = {
        use rand::distr::{Alphanumeric, SampleString};
        Alphanumeric.sample_string(&mut rand::rng(), 128)
    };
    st.store
        .add_token(&token, account.id, now, st.args.quirk(Quirk::SingleToken))?;
    st.store.add_session(&ctx.session, account.id)?;
    st.store.record_login(account.id, &now_string(), &ctx.ip)?;
    Ok(Reply::Ok(json!({"data": {
        "access_token": token,
        "account_id": ctx.shapes.num(account.id),
    }})))
}

/// `unix` seconds as this machine's local time, as the emulator's dates are written.
fn local_time(unix: i64) -> String {
    use chrono::TimeZone;
    match chrono::Local.timestamp_opt(unix, 0).single() {
        Some(time) => time.format("%Y-%m-%d %H:%M:%S %:z").to_string(),
        None => format!("unix time {unix}"),
    }
}

/// `/disable_access_token`.
pub fn disable_token(ctx: &Ctx) -> Outcome {
    ctx.auth()?;
    if let Some(token) = ctx.params.get("access_token") {
        ctx.st.store.delete_token(token)?;
    }
    Ok(Reply::Ok(
        json!({"response": "Token removed or no longer available."}),
    ))
}

/// Token check of account/* and package/*: the token alone, then the account asked about
/// (any account: the server does not check ownership). `None` when an admin omitted it.
fn account_auth(ctx: &Ctx) -> Result<(Account, Option<Account>), Reply> {
    let token = ctx
        .params
        .non_empty("access_token")
        .ok_or_else(|| Reply::err("Please provide the access_token param."))?;
    let owner_id = ctx
        .token_owner(token)?
        .ok_or_else(|| Reply::err(BAD_TOKEN))?;
    let owner = ctx
        .st
        .store
        .account(owner_id)?
        .ok_or_else(|| Reply::err(BAD_TOKEN))?;
    match ctx.params.non_empty("account_id") {
        None if owner.is_admin => Ok((owner, None)),
        None => Err(Reply::err("Please provide the account_id param.")),
        Some(id) => {
            let asked = match id.parse::<i64>() {
                Ok(id) => ctx.st.store.account(id)?,
                Err(_) => None,
            };
            Ok((owner, asked))
        }
    }
}

/// account/* actions.
pub fn dispatch(ctx: &Ctx, action: &str) -> Outcome {
    let (_, asked) = account_auth(ctx)?;
    match action {
        "info" => Ok(Reply::Ok(json!({
            "data": asked.map_or(Value::Bool(false), |a| info(ctx, &a))
        }))),
        "package" => Ok(Reply::Ok(json!({
            "data": asked.map_or(Value::Bool(false), |a| package(ctx, &a))
        }))),
        other => Ok(unknown_action(ctx, "account", other)),
    }
}

/// package/* actions (admin only).
pub fn package_dispatch(ctx: &Ctx, action: &str) -> Outcome {
    let (owner, _) = account_auth(ctx)?;
    if !owner.is_admin {
        return Err(Reply::err(
            "API user must be an admin user for this endpoint.",
        ));
    }
    match action {
        "listing" => Ok(Reply::Ok(json!({"data": [package(ctx, &owner)]}))),
        other => Ok(unknown_action(ctx, "package", other)),
    }
}

fn info(ctx: &Ctx, a: &Account) -> Value {
    let s = &ctx.shapes;
    json!({
        "id": s.num(a.id),
        "username": a.username,
        "level_id": s.num(if a.is_admin { 20 } else { 1 }),
        "email": format!("{}@example.invalid", a.username),
        "lastlogindate": a.last_login,
        "lastloginip": a.last_login_ip,
        "status": "active",
        "title": "Mr",
        "firstname": if a.is_admin { "Admin" } else { "Emulated" },
        "lastname": if a.is_admin { "Account" } else { "User" },
        "languageId": s.num(1),
        // The stock admin has no creation date but a payment record; users the reverse.
        "datecreated": if a.is_admin { Value::Null } else { a.created.clone().into() },
        "lastPayment": if a.is_admin { a.created.clone().into() } else { Value::Null },
        "paidExpiryDate": if a.is_admin { a.created.clone().into() } else { Value::Null },
        "storageLimitOverride": Value::Null,
    })
}

fn package(ctx: &Ctx, a: &Account) -> Value {
    let s = &ctx.shapes;
    let args = &ctx.st.args;
    let max_storage = i64::try_from(args.max_storage).unwrap_or(i64::MAX);
    let max_upload = i64::try_from(args.max_upload_size).unwrap_or(i64::MAX);
    json!({
        "id": s.num(if a.is_admin { 20 } else { 1 }),
        "label": if a.is_admin { "Admin" } else { "Free User" },
        "max_upload_size": s.num(max_upload),
        "can_upload": s.num(1),
        "wait_between_downloads": s.num(0),
        "download_speed": s.num(0),
        "max_storage_bytes": s.num(max_storage),
        "show_site_adverts": s.num(0),
        "show_upgrade_screen": s.num(1),
        "days_to_keep_inactive_files": s.num(0),
        "concurrent_uploads": s.num(1000),
        "concurrent_downloads": s.num(0),
        "downloads_per_24_hours": s.num(0),
        "max_download_filesize_allowed": s.num(0),
        "max_remote_download_urls": s.num(50),
        "level_type": if a.is_admin { "admin" } else { "free user" },
        "on_upgrade_page": s.num(0),
    })
}
