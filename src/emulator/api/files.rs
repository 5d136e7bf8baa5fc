//! file/* actions: upload, download, url_upload_add/status, info, edit, delete, move, copy.
use base64::Engine;
use serde_json::{json, Value};

use super::{unknown_action, Ctx, Outcome, Reply};
use crate::emulator::blobs::random_hex;
use crate::emulator::config::{Profile, Quirk};
use crate::emulator::ingest::{store_file, IngestError};
use crate::emulator::names::{clean_input, extension_of, stored_file_type, stored_form};
use crate::emulator::reply::now_string;
use crate::emulator::state::unix_now;
use crate::emulator::store::{FileRow, NewFile};
use crate::emulator::url_upload;

const NO_FILE: &str = "Could not find file based on file_id.";
const STORAGE_FULL: &str = "Upload storage full, please delete some active files and try again.";

impl From<IngestError> for Reply {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::Db(e) => e.into(),
            IngestError::Io(e) => e.into(),
        }
    }
}

/// Runs a file action for an authenticated account.
pub async fn dispatch(ctx: &mut Ctx, account: i64, action: &str) -> Outcome {
    let host = ctx.st.args.host;
    match action {
        "upload" => upload(ctx, account).await,
        "download" => download(ctx, account),
        "url_upload_add" if host.has_url_upload() => url_upload_add(ctx, account),
        "url_upload_status" if host.has_url_upload() => url_upload_status(ctx, account),
        "info" => info(ctx, account),
        "edit" => edit(ctx, account),
        "delete" => delete(ctx, account),
        "move" => move_file(ctx, account),
        "copy" => copy(ctx, account),
        other => Ok(unknown_action(ctx, "file", other)),
    }
}

fn file_param(ctx: &Ctx, account: i64) -> Result<FileRow, Reply> {
    let id = ctx
        .params
        .non_empty("file_id")
        .ok_or_else(|| Reply::err("Please provide the file_id param."))?;
    let id = id.parse::<i64>().map_err(|_| Reply::err(NO_FILE))?;
    ctx.st
        .store
        .file(account, id)?
        .ok_or_else(|| Reply::err(NO_FILE))
}

/// Resolves a destination folder parameter: `null` is the root (folder 0 under the 4.x bug),
/// anything else must be an owned folder.
fn destination(ctx: &Ctx, account: i64, key: &str) -> Result<Option<i64>, Reply> {
    let value = ctx
        .params
        .non_empty(key)
        .ok_or_else(|| Reply::err(&format!("Please provide the {key} param.")))?;
    if value == "null" {
        let bug = ctx.profile() == Profile::V4 && ctx.st.args.quirk(Quirk::NullMoveBug);
        return Ok(if bug { Some(0) } else { None });
    }
    let missing = || {
        Reply::err(&format!(
            "Could not find the destination folder id defined by {key}."
        ))
    };
    let id = value.parse::<i64>().map_err(|_| missing())?;
    ctx.st
        .store
        .folder(account, id)?
        .map(|f| Some(f.id))
        .ok_or_else(missing)
}

async fn upload(ctx: &mut Ctx, account: i64) -> Outcome {
    let Some(part) = ctx.params.upload.take() else {
        return Err(Reply::err("Did not receive uploaded file."));
    };
    if part.blob.size == 0 {
        return Err(Reply::err("Filesize received was zero."));
    }
    let max = ctx.st.args.max_storage;
    if max > 0 && ctx.st.store.storage_used(account)? as u64 + part.blob.size > max {
        return Err(Reply::err(STORAGE_FULL));
    }
    let folder = ctx
        .params
        .non_empty("folder_id")
        .and_then(|v| v.parse::<i64>().ok());
    let stored = store_file(&ctx.st, account, folder, &part.filename, part.blob, &ctx.ip).await?;
    // The server reports the content hash only for deduplicated uploads.
    let hash = &stored.file.digest;
    Ok(Reply::Ok(json!({
        "response": "File uploaded",
        "data": [ctx.shapes.uploaded(&stored.file, &stored.reply_name, stored.deduplicated, hash)],
    })))
}

fn download(ctx: &Ctx, account: i64) -> Outcome {
    let by_short = ctx.st.args.host.downloads_by_short_url();
    let file = match (
        ctx.params.non_empty("file_id"),
        ctx.params.non_empty("short_url"),
    ) {
        (None, Some(short)) if by_short => ctx
            .st
            .store
            .file_by_short_url(account, short)?
            .ok_or_else(|| Reply::err(NO_FILE))?,
        _ => file_param(ctx, account)?,
    };
    let token = random_hex(64);
    ctx.st
        .store
        .add_download_token(&token, file.id, unix_now() + 24 * 3600)?;
    Ok(Reply::Ok(json!({"data": {
        "file_id": ctx.shapes.num(file.id),
        "filename": file.name,
        "download_url": format!("{}?download_token={token}", ctx.shapes.named_url(&file)),
    }})))
}

fn url_upload_add(ctx: &Ctx, account: i64) -> Outcome {
    let encoded = ctx
        .params
        .non_empty("file_url_base64")
        .ok_or_else(|| Reply::err("Please provide the file_url_base64 param."))?;
    let bad =
        || Reply::err("Could not parse the file_url_base64 parameter. Ensure it's base64 encoded.");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| bad())?;
    let url = String::from_utf8(bytes).map_err(|_| bad())?;
    let url = clean_input(&url);
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(bad());
    }
    let folder = ctx
        .params
        .non_empty("folder_id")
        .and_then(|v| v.parse::<i64>().ok());
    let id = ctx
        .st
        .store
        .add_url_upload(account, folder, &url, &now_string())?;
    url_upload::spawn(
        ctx.st.clone(),
        id,
        account,
        folder,
        url.clone(),
        ctx.ip.clone(),
    );
    Ok(Reply::Ok(json!({
        "response": "File download from URL scheduled",
        "data": {"scheduled_item_id": id, "url": url},
    })))
}

fn url_upload_status(ctx: &Ctx, account: i64) -> Outcome {
    let id = ctx
        .params
        .non_empty("scheduled_item_id")
        .ok_or_else(|| Reply::err("Please provide the scheduled_item_id param."))?;
    let row = match id.parse::<i64>() {
        Ok(id) => ctx.st.store.url_upload(account, id)?,
        Err(_) => None,
    }
    .ok_or_else(|| Reply::err("Could not find scheduled item."))?;
    let downloaded = match row.file_id {
        Some(fid) => match ctx.st.store.file(account, fid)? {
            Some(f) => json!({
                "file_id": f.id,
                "name": f.name,
                "size": f.size,
                "url": ctx.shapes.named_url(&f),
            }),
            None => Value::Null,
        },
        None => Value::Null,
    };
    Ok(Reply::Ok(json!({
        "response": "Scheduled URL file download found",
        "data": {
            "scheduled_item_id": row.id,
            "status": row.status,
            "created": row.created,
            "started": row.started,
            "finished": row.finished,
            "total_size": row.total_size,
            "downloaded_size": row.downloaded_size,
            "downloaded_file": downloaded,
            "error": row.error,
        },
    })))
}

fn info(ctx: &Ctx, account: i64) -> Outcome {
    let file = file_param(ctx, account)?;
    Ok(Reply::Ok(json!({"data": ctx.shapes.file_full(&file)})))
}

fn edit(ctx: &Ctx, account: i64) -> Outcome {
    let mut file = file_param(ctx, account)?;
    if let Some(name) = ctx.params.non_empty("filename") {
        file.name = stored_form(name);
        file.extension = extension_of(&file.name);
    }
    // Blank (or blank once cleaned) leaves the type as it is.
    if let Some(kind) = ctx.params.non_empty("fileType") {
        file.file_type = stored_file_type(kind);
    }
    match ctx.params.non_empty("folder_id") {
        None => {}
        Some("null") | Some("0") => file.folder_id = None,
        // A folder the account does not own is silently ignored.
        Some(other) => {
            if let Ok(id) = other.parse::<i64>() {
                if let Some(folder) = ctx.st.store.folder(account, id)? {
                    file.folder_id = Some(folder.id);
                }
            }
        }
    }
    ctx.st.store.update_file(&file)?;
    Ok(Reply::Ok(json!({
        "response": "File successfully updated.",
        "data": ctx.shapes.file_full(&file),
    })))
}

fn delete(ctx: &Ctx, account: i64) -> Outcome {
    let mut file = file_param(ctx, account)?;
    file.status = "trash".into();
    file.folder_id = None;
    ctx.st.store.update_file(&file)?;
    Ok(Reply::Ok(json!({
        "response": "File successfully set as deleted.",
        "data": ctx.shapes.file_full(&file),
    })))
}

fn move_file(ctx: &Ctx, account: i64) -> Outcome {
    let mut file = file_param(ctx, account)?;
    file.folder_id = destination(ctx, account, "new_parent_folder_id")?;
    ctx.st.store.update_file(&file)?;
    Ok(Reply::Ok(json!({
        "response": "File successfully moved.",
        "data": ctx.shapes.file_full(&file),
    })))
}

fn copy(ctx: &Ctx, account: i64) -> Outcome {
    let original = file_param(ctx, account)?;
    let folder = destination(ctx, account, "copy_to_folder_id")?;
    let logged_in =
        ctx.session_sent && ctx.st.store.session_account(&ctx.session)? == Some(account);
    let owner_known = logged_in || !ctx.st.args.quirk(Quirk::CopyNeedsSession);
    let new = NewFile {
        account_id: owner_known.then_some(account),
        folder_id: folder,
        file_type: original.file_type.clone(),
        size: original.size,
        blob: original.blob.clone(),
        digest: original.digest.clone(),
        uploaded_ip: ctx.ip.clone(),
        uploaded_date: now_string(),
        keywords: None,
        upload_source: "direct".into(),
        delete_hash: random_hex(32),
        unique_hash: random_hex(64),
    };
    let copy = ctx
        .st
        .store
        .insert_file(&new, |_| Ok(original.name.clone()))?;
    if !owner_known {
        return Err(Reply::err(NO_FILE));
    }
    Ok(Reply::Ok(json!({
        "response": "File successfully copyied.",
        "original_file": {"data": ctx.shapes.file_full(&original)},
        "new_file": {"data": ctx.shapes.file_full(&copy)},
    })))
}
