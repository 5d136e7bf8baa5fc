//! Sample content for `yetifs demo`: a small account that shows what the mount does with
//! folders, text, pictures, unicode names, two files of one name, and a large file to stream.
//! Everything is generated here, deterministically, and uploaded through the `Remote` trait, so
//! the demo exercises the same path as a real account.
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::api::{Client, ClientConfig, Credentials, Secret};
use crate::cli::progress::Progress;
use crate::cli::settings::MountFlags;
use crate::emulator::{Emulator, ServeArgs};
use crate::remote::{Remote, RemoteError, Result};

/// Arguments of `yetifs demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Where to mount the demo account (created if missing).
    pub mountpoint: PathBuf,
    /// Address of the demo server (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: std::net::SocketAddr,
}

/// Runs `yetifs demo`: an emulator with sample content, mounted at the mountpoint, until
/// Ctrl-C (or `umount`) ends both.
pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    if !args.mountpoint.exists() {
        std::fs::create_dir_all(&args.mountpoint)
            .with_context(|| format!("cannot create {}", args.mountpoint.display()))?;
    }
    let scratch = tempfile::tempdir().context("cannot create a temporary directory")?;
    let serve = ServeArgs {
        listen: args.listen,
        data: Some(scratch.path().join("server")),
        ..ServeArgs::default()
    };
    let emulator = Emulator::start(serve).await?;
    println!("demo server: {}", emulator.base_url());
    let client = Client::new(ClientConfig::new(
        emulator.base_url(),
        Credentials::Keys {
            key1: Secret::new(emulator.key1().to_owned()),
            key2: Secret::new(emulator.key2().to_owned()),
        },
    ))?;
    let mut progress = Progress::new("demo setup", SEED_STEPS);
    seed(&client, |step| progress.step(step))
        .await
        .context("cannot fill the demo account")?;
    progress.finish("sample account ready");
    let settings = MountFlags {
        api_url: Some(emulator.base_url()),
        key1: Some(emulator.key1().to_owned()),
        key2: Some(emulator.key2().to_owned()),
        cache_dir: Some(scratch.path().join("cache")),
        ..MountFlags::default()
    }
    .resolve(None)?;
    let mounted = crate::cli::mount::mount(&settings, &args.mountpoint).await?;
    println!(
        "mounted on {}; try `ls -lR {0}`. Ctrl-C unmounts and stops the demo.",
        args.mountpoint.display()
    );
    let served = crate::cli::mount::serve_until_done(mounted, &settings).await;
    let stopped = emulator.shutdown().await;
    served.and(stopped)
}

/// How many steps [`seed`] reports: six text files, two pictures, a file renamed to a
/// duplicate name, the large file.
pub const SEED_STEPS: u64 = 10;

/// Size of the large sample file: big enough that streaming and read-ahead show.
pub const LARGE_FILE_SIZE: u64 = 120 << 20;

/// Uploads the sample tree into the account's root, reporting each of its [`SEED_STEPS`]
/// steps through `progress`.
pub async fn seed<R: Remote>(remote: &R, mut progress: impl FnMut(&str)) -> Result<()> {
    let scratch = tempfile::tempdir()?;
    let docs = remote.create_folder(None, "Documents").await?.id;
    let reports = remote.create_folder(Some(docs), "Reports 2026").await?.id;
    let pictures = remote.create_folder(None, "Pictures").await?.id;
    let unicode = remote.create_folder(None, "Données partagées").await?.id;
    let videos = remote.create_folder(None, "Videos").await?.id;

    let text_files: [(Option<u64>, &str, Vec<u8>); 6] = [
        (None, "README.txt", readme()),
        (Some(docs), "notes.md", notes()),
        (Some(reports), "summary.csv", csv(200)),
        (Some(reports), "summary-q2.csv", csv(5000)),
        (
            Some(unicode),
            "été à Zürich.txt",
            "Grüße aus Zürich — ½ € ✓\n".into(),
        ),
        (
            Some(docs),
            "todo.txt",
            "1. mount\n2. ls -lR\n3. cp -r\n".into(),
        ),
    ];
    for (folder, name, body) in text_files {
        progress(&format!("uploading {name}"));
        upload_bytes(remote, scratch.path(), folder, name, &body).await?;
    }

    for (name, picture) in [
        (
            "gradient.bmp",
            bmp(256, 256, |x, y| [x as u8, y as u8, 128]),
        ),
        (
            "checkerboard.bmp",
            bmp(320, 240, |x, y| {
                if (x / 40 + y / 40) % 2 == 0 {
                    [240, 240, 240]
                } else {
                    [30, 60, 120]
                }
            }),
        ),
    ] {
        progress(&format!("uploading {name}"));
        upload_bytes(remote, scratch.path(), Some(pictures), name, &picture).await?;
    }

    // Two files of one name in one folder, as the API allows after a rename: the mount shows
    // the second as `todo~ID.txt`.
    progress("uploading todo-old.txt, renamed to a duplicate name");
    let copy = upload_bytes(
        remote,
        scratch.path(),
        Some(docs),
        "todo-old.txt",
        b"an older list, same name after a rename\n",
    )
    .await?;
    remote.rename_file(copy, "todo.txt").await?;

    progress(&format!(
        "uploading sample-video.bin ({} MiB)",
        LARGE_FILE_SIZE >> 20
    ));
    let path = scratch.path().join("sample-video.bin");
    write_pseudo_random(&path, LARGE_FILE_SIZE)?;
    remote
        .upload(Some(videos), "sample-video.bin", &path)
        .await?;
    Ok(())
}

async fn upload_bytes<R: Remote>(
    remote: &R,
    scratch: &Path,
    folder: Option<u64>,
    name: &str,
    body: &[u8],
) -> Result<u64> {
    let path = scratch.join("upload");
    std::fs::write(&path, body)?;
    let entry = remote.upload(folder, name, &path).await?;
    if entry.name != name {
        remote.rename_file(entry.id, name).await?;
    }
    Ok(entry.id)
}

fn readme() -> Vec<u8> {
    b"This is a demo account served by `yetifs serve` and mounted by yetifs.\n\
      Try: ls -lR, find . -name '*.csv', sha256sum Videos/sample-video.bin,\n\
      getfattr -d Documents/notes.md (the share URL and id are extended attributes).\n"
        .to_vec()
}

fn notes() -> Vec<u8> {
    b"# Notes\n\nFolders are folders, files are files. Two files of one name in one folder \
      show as name~ID.ext.\n"
        .to_vec()
}

fn csv(rows: u32) -> Vec<u8> {
    let mut out = b"day,visitors,downloads\n".to_vec();
    for day in 0..rows {
        let visitors = (day * 7919) % 1000;
        out.extend(format!("{day},{visitors},{}\n", visitors / 3).as_bytes());
    }
    out
}

/// An uncompressed 24-bit BMP: the simplest picture format every viewer opens.
fn bmp(width: u32, height: u32, pixel: impl Fn(u32, u32) -> [u8; 3]) -> Vec<u8> {
    let row = (width * 3).div_ceil(4) * 4;
    let data_size = row * height;
    let mut out = Vec::with_capacity(54 + data_size as usize);
    out.extend(b"BM");
    out.extend((54 + data_size).to_le_bytes());
    out.extend([0u8; 4]);
    out.extend(54u32.to_le_bytes());
    out.extend(40u32.to_le_bytes());
    out.extend(width.to_le_bytes());
    out.extend(height.to_le_bytes());
    out.extend(1u16.to_le_bytes());
    out.extend(24u16.to_le_bytes());
    out.extend([0u8; 4]);
    out.extend(data_size.to_le_bytes());
    out.extend([0u8; 16]);
    for y in 0..height {
        let start = out.len();
        for x in 0..width {
            let [r, g, b] = pixel(x, height - 1 - y);
            out.extend([b, g, r]);
        }
        out.resize(start + row as usize, 0);
    }
    out
}

/// Writes `size` bytes of a fixed pseudo-random sequence, a block at a time.
fn write_pseudo_random(path: &Path, size: u64) -> Result<()> {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut block = vec![0u8; 1 << 16];
    let mut left = size;
    while left > 0 {
        for chunk in block.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
        }
        let n = left.min(block.len() as u64) as usize;
        file.write_all(&block[..n])?;
        left -= n as u64;
    }
    file.flush().map_err(RemoteError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bmp_has_the_size_its_header_claims() {
        let picture = bmp(3, 2, |_, _| [1, 2, 3]);
        let claimed = u32::from_le_bytes(picture[2..6].try_into().unwrap());
        assert_eq!(claimed as usize, picture.len());
        assert_eq!(picture.len(), 54 + 12 * 2);
    }

    #[test]
    fn pseudo_random_file_is_deterministic_and_exact_in_size() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        write_pseudo_random(&a, 100_003).unwrap();
        write_pseudo_random(&b, 100_003).unwrap();
        let (a, b) = (std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
        assert_eq!(a.len(), 100_003);
        assert_eq!(a, b);
        assert_ne!(a[..8], a[8..16]);
    }
}
