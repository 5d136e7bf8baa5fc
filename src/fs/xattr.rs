//! Extended attributes: the server facts that have no place in `stat` (share links, ids,
//! download counts, a folder's sharing level), read-only under `user.yetifs.*`.
use super::namespace::inode::NodeData;

/// The one namespace attributes live in; the others (`security.`, `system.`, `trusted.`) are
/// not supported.
pub const NAMESPACE: &str = "user.";

/// The attributes of an item, name and value, in a fixed order; the root has none. An
/// attribute whose value the server did not give is absent.
pub fn attributes(data: &NodeData) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    match data {
        NodeData::Root | NodeData::Local(_) => {}
        NodeData::File(file) => {
            out.push(("user.yetifs.id", file.id.to_string()));
            if let Some(url) = &file.url {
                out.push(("user.yetifs.url", url.clone()));
            }
            if !file.short_url.is_empty() {
                out.push(("user.yetifs.short_url", file.short_url.clone()));
            }
            out.push(("user.yetifs.downloads", file.downloads.to_string()));
        }
        NodeData::Folder(folder) => {
            out.push(("user.yetifs.id", folder.id.to_string()));
            if let Some(url) = &folder.url {
                out.push(("user.yetifs.url", url.clone()));
            }
            out.push(("user.yetifs.public", folder.is_public.to_string()));
        }
    }
    out
}
