//! The `yetifs` command, and `mount.fuse.yetifs` when called by that name (see
//! `yetifs::mount_helper`).
use std::ffi::OsString;

use clap::Parser;

use yetifs::cli::{Cli, Command};
use yetifs::mount_helper::{self, Invocation};

/// The arguments to run with (program name first): this process's, or those the mount helper
/// translates them to. `None`: nothing to do (`mount -f`).
fn arguments() -> Option<Vec<OsString>> {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let Some(argv0) = args.first().cloned() else {
        return Some(vec!["yetifs".into()]);
    };
    if !mount_helper::is_helper(&argv0) {
        return Some(args);
    }
    match mount_helper::translate(&args.split_off(1)) {
        Ok(Invocation::Mount(translated)) => {
            Some(std::iter::once(argv0).chain(translated).collect())
        }
        Ok(Invocation::Fake) => None,
        Err(e) => {
            eprintln!("{}: {e}", argv0.to_string_lossy());
            std::process::exit(1);
        }
    }
}

fn main() {
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("info,fuser::mnt=error"),
    )
    .init();
    if !yetifs::malloc::keep_large_buffers() {
        log::debug!("the allocator keeps its default thresholds");
    }
    let Some(args) = arguments() else {
        return;
    };
    let cli = Cli::parse_from(&args);
    if let Command::Mount(mount) = &cli.command {
        if mount.daemon && !yetifs::daemon::is_child() {
            match yetifs::daemon::spawn_and_wait(&args[1..]) {
                Ok(code) => std::process::exit(code),
                Err(e) => {
                    eprintln!("yetifs: cannot start the background mount: {e}");
                    std::process::exit(1);
                }
            }
        }
    }
    let result = tokio::runtime::Runtime::new()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| {
            runtime.block_on(async {
                match cli.command {
                    Command::Serve(args) => yetifs::emulator::run(args).await,
                    Command::Mount(args) => yetifs::mount_cmd::run(args).await,
                    Command::Status(args) => yetifs::status_cmd::run(args).await,
                    Command::Demo(args) => yetifs::demo::run(args).await,
                    Command::Completions(args) => yetifs::generate_cmd::completions(args),
                    Command::Man(args) => yetifs::generate_cmd::man(args),
                }
            })
        });
    if let Err(e) = result {
        eprintln!("yetifs: {e:#}");
        std::process::exit(1);
    }
}
