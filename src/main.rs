//! The `yetifs` command, and `mount.fuse.yetifs` when called by that name (see
//! `yetifs::system::mount_helper`).
use std::ffi::OsString;

use clap::{CommandFactory, FromArgMatches};

use yetifs::cli::{Cli, Command};
use yetifs::system::mount_helper::{self, Invocation};

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
    let Some(args) = arguments() else {
        return;
    };
    let matches = Cli::command().get_matches_from(&args);
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let detaching =
        matches!(&cli.command, Command::Mount(m) if m.daemon) && yetifs::system::daemon::is_child();
    if let Err(e) =
        yetifs::system::logging::init(&cli.log_options(), cli.default_level(), detaching)
    {
        eprintln!("yetifs: cannot open the log file {e}");
        std::process::exit(1);
    }
    if !yetifs::system::malloc::keep_large_buffers() {
        log::debug!("the allocator keeps its default thresholds");
    }
    if let Some(warning) = yetifs::cli::settings::typed_keys_warning(&matches) {
        // The detached half of --daemon runs the same command line: warn once, in the first.
        if !yetifs::system::daemon::is_child() {
            eprintln!("yetifs: warning: {warning}");
        }
    }
    if let Command::Mount(mount) = &cli.command {
        if mount.daemon && !yetifs::system::daemon::is_child() {
            match yetifs::system::daemon::spawn_and_wait(&args[1..]) {
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
                    Command::Mount(args) => yetifs::cli::mount::run(args).await,
                    Command::Status(args) => yetifs::cli::status::run(args).await,
                    Command::Sync(args) => match yetifs::cli::sync::run(args).await {
                        Ok(0) => Ok(()),
                        Ok(code) => std::process::exit(code),
                        Err(e) => Err(e),
                    },
                    Command::Fetch(args) => match yetifs::cli::fetch::run(args).await {
                        Ok(0) => Ok(()),
                        Ok(code) => std::process::exit(code),
                        Err(e) => Err(e),
                    },
                    Command::Share(args) => match yetifs::cli::share::run(args).await {
                        Ok(0) => Ok(()),
                        Ok(code) => std::process::exit(code),
                        Err(e) => Err(e),
                    },
                    Command::Demo(args) => yetifs::cli::demo::run(args).await,
                    Command::Config(args) => yetifs::cli::config::run(args).await,
                    Command::Completions(args) => yetifs::cli::generate::completions(args),
                    Command::Man(args) => yetifs::cli::generate::man(args),
                }
            })
        });
    if let Err(e) = result {
        eprintln!("yetifs: {e:#}");
        std::process::exit(1);
    }
}
