//! folder/* actions: create, listing, info, edit, move, delete.
use serde_json::{json, Value};

use super::{unknown_action, Ctx, Outcome, Reply};
use crate::emulator::config::{Profile, Quirk};
use crate::emulator::names::stored_form;
use crate::emulator::reply::{now_string, FolderStats};
use crate::emulator::store::FolderRow;

const NO_FOLDER: &str = "Could not find folder based on folder_id.";

/// Runs a folder action for an authenticated account.
pub fn dispatch(ctx: &Ctx, account: i64, action: &str) -> Outcome {
    match action {
        "create" => create(ctx, account),
        "listing" => listing(ctx, account),
        "info" => info(ctx, account),
        "edit" => edit(ctx, account),
        "move" => move_folder(ctx, account),
        "delete" => delete(ctx, account),
        other => Ok(unknown_action(ctx, "folder", other)),
    }
}

/// A folder as replies show it.
pub fn folder_value(ctx: &Ctx, folder: &FolderRow, with_password: bool) -> Result<Value, Reply> {
    let (child_folders, files, total_size) = ctx.st.store.folder_stats(folder.id)?;
    Ok(ctx.shapes.folder(
        folder,
        FolderStats {
            child_folders,
            files,
            total_size,
        },
        with_password,
    ))
}

fn is_public(ctx: &Ctx) -> Option<i64> {
    ctx.params
        .non_empty("is_public")
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|v| (0..=2).contains(v))
}

fn owned(ctx: &Ctx, account: i64, id: Option<&str>) -> Result<Option<FolderRow>, Reply> {
    match id.and_then(|v| v.parse::<i64>().ok()) {
        Some(id) => Ok(ctx.st.store.folder(account, id)?),
        None => Ok(None),
    }
}

fn create(ctx: &Ctx, account: i64) -> Outcome {
    let name = ctx
        .params
        .non_empty("folder_name")
        .ok_or_else(|| Reply::err("Please provide the folder_name param."))?;
    // The parent is taken as given, owned or not (an unknown id makes an orphan).
    let parent = ctx
        .params
        .non_empty("parent_id")
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|v| *v > 0);
    let folder = ctx.st.store.create_folder(
        account,
        parent,
        &stored_form(name),
        is_public(ctx).unwrap_or(0),
        ctx.params.non_empty("access_password"),
        &now_string(),
    )?;
    Ok(Reply::Ok(json!({
        "response": "Folder successfully created.",
        "data": folder_value(ctx, &folder, true)?,
    })))
}

fn listing(ctx: &Ctx, account: i64) -> Outcome {
    let parent = match ctx.params.non_empty("parent_folder_id") {
        None | Some("0") => None,
        Some(id) => Some(
            owned(ctx, account, Some(id))?
                .ok_or_else(|| Reply::err(NO_FOLDER))?
                .id,
        ),
    };
    let v5 = ctx.profile() == Profile::V5;
    let store = &ctx.st.store;
    let folders = store
        .child_folders(account, parent)?
        .iter()
        .map(|f| folder_value(ctx, f, false))
        .collect::<Result<Vec<_>, _>>()?;
    let files: Vec<Value> = store
        .files_in(account, parent, v5)?
        .iter()
        .map(|f| ctx.shapes.file_listed(f))
        .collect();
    Ok(Reply::Ok(
        json!({"data": {"folders": folders, "files": files}}),
    ))
}

fn info(ctx: &Ctx, account: i64) -> Outcome {
    let id = ctx
        .params
        .non_empty("folder_id")
        .ok_or_else(|| Reply::err("Please provide the folder_id param."))?;
    let folder = owned(ctx, account, Some(id))?.ok_or_else(|| Reply::err(NO_FOLDER))?;
    Ok(Reply::Ok(
        json!({"data": folder_value(ctx, &folder, true)?}),
    ))
}

fn edit(ctx: &Ctx, account: i64) -> Outcome {
    let id = ctx
        .params
        .non_empty("folder_id")
        .ok_or_else(|| Reply::err("Please provide the folder_id param."))?;
    let mut folder = owned(ctx, account, Some(id))?.ok_or_else(|| Reply::err(NO_FOLDER))?;
    if let Some(name) = ctx.params.non_empty("folder_name") {
        folder.name = stored_form(name);
    }
    match ctx.params.non_empty("parent_id") {
        None => {}
        Some("null") | Some("0") => folder.parent_id = None,
        // A parent the account does not own is silently ignored.
        Some(other) => {
            if let Some(parent) = owned(ctx, account, Some(other))? {
                folder.parent_id = Some(parent.id);
            }
        }
    }
    if let Some(level) = is_public(ctx) {
        folder.is_public = level;
    }
    // Sent empty, the parameter takes the password away (not probed on a real server; the
    // reply's accessPassword shows what the server kept, and yetifs checks it).
    match ctx.params.get("access_password") {
        None => {}
        Some("") => folder.password = None,
        Some(password) => folder.password = Some(password.to_string()),
    }
    ctx.st.store.update_folder(&folder)?;
    Ok(Reply::Ok(json!({
        "response": "Folder successfully updated.",
        "data": folder_value(ctx, &folder, true)?,
    })))
}

fn move_folder(ctx: &Ctx, account: i64) -> Outcome {
    let id = ctx
        .params
        .non_empty("folder_id")
        .ok_or_else(|| Reply::err("Please provide the folder_id param."))?;
    let dest = ctx
        .params
        .non_empty("new_parent_folder_id")
        .ok_or_else(|| Reply::err("Please provide the new_parent_folder_id param."))?;
    if id == dest {
        return Err(Reply::err(
            "Param folder_id can not match new_parent_folder_id.",
        ));
    }
    // No cycle check: a folder moved under its own child vanishes with it, as on the server.
    let parent = if dest == "null" {
        None
    } else {
        Some(
            owned(ctx, account, Some(dest))?
                .ok_or_else(|| {
                    Reply::err(
                        "Could not find the destination folder id defined by new_parent_folder_id.",
                    )
                })?
                .id,
        )
    };
    let mut folder =
        owned(ctx, account, Some(id))?.ok_or_else(|| Reply::err("Failed moving the folder."))?;
    folder.parent_id = parent;
    ctx.st.store.update_folder(&folder)?;
    Ok(Reply::Ok(json!({
        "response": "Folder successfully moved.",
        "data": folder_value(ctx, &folder, true)?,
    })))
}

fn delete(ctx: &Ctx, account: i64) -> Outcome {
    let id = ctx
        .params
        .non_empty("folder_id")
        .ok_or_else(|| Reply::err("Please provide the folder_id param."))?;
    let folder =
        owned(ctx, account, Some(id))?.ok_or_else(|| Reply::err("Failed deleting the folder."))?;
    let to_root = ctx.profile() == Profile::V4 && ctx.st.args.quirk(Quirk::TrashToRoot);
    ctx.st
        .store
        .trash_folder(account, folder.id, to_root, &now_string())?;
    Ok(Reply::Ok(
        json!({"response": "Folder successfully set as deleted."}),
    ))
}
