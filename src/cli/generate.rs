//! `yetifs completions SHELL` and `yetifs man`: the shell completion scripts and the manual
//! pages, generated from the clap definitions of the command line so they can never disagree
//! with it. A package build writes them into the package (`scripts/package`); a user who built
//! from source can print them where the shell or `man` looks.
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::CommandFactory;
use clap_mangen::roff::{bold, Roff};
use clap_mangen::Man;

use crate::cli::Cli;

/// Arguments of `yetifs completions`.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to print the completion script of.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Arguments of `yetifs man`.
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Write yetifs.1 and a page for each command (yetifs-mount.1, ...) into this directory
    /// instead of printing yetifs.1.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Runs `yetifs completions`: prints the script for the shell.
pub fn completions(args: CompletionsArgs) -> anyhow::Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "yetifs", &mut script);
    print_out(&script)
}

/// Runs `yetifs man`: prints yetifs.1, or writes every page into `--dir`.
pub fn man(args: ManArgs) -> anyhow::Result<()> {
    match args.dir {
        Some(dir) => write_pages(&dir),
        None => print_out(&main_page()?),
    }
}

/// yetifs(1): the usual sections of the top command, then one section per command with its
/// synopsis, description and every option, so `man yetifs` alone documents every flag.
pub fn main_page() -> anyhow::Result<Vec<u8>> {
    let cmd = command();
    let mut page = Vec::new();
    Man::new(cmd.clone()).render(&mut page)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let title = format!("{} {}", cmd.get_name(), sub.get_name()).to_uppercase();
        Roff::new()
            .control("SH", [title.as_str()])
            .to_writer(&mut page)?;
        let man = Man::new(sub.clone());
        let mut sections = Vec::new();
        man.render_synopsis_section(&mut sections)?;
        man.render_description_section(&mut sections)?;
        man.render_options_section(&mut sections)?;
        page.extend(demote_sections(&sections));
    }
    Ok(page)
}

/// The command line as the pages and scripts describe it: built (so subcommands have their
/// full names) and without clap's `help` subcommand, which needs no page.
fn command() -> clap::Command {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

/// Writes yetifs.1 and yetifs-COMMAND.1 for each command into `dir`, creating it.
fn write_pages(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let main = dir.join("yetifs.1");
    std::fs::write(&main, main_page()?)
        .with_context(|| format!("cannot write {}", main.display()))?;
    let source = format!("yetifs {}", env!("YETIFS_VERSION"));
    for sub in command().get_subcommands().filter(|s| !s.is_hide_set()) {
        let man = Man::new(sub.clone()).source(&source);
        let path = dir.join(man.get_filename());
        let mut page = Vec::new();
        man.render(&mut page)?;
        page.extend(see_also());
        std::fs::write(&path, page).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// The SEE ALSO section of a command's page, pointing at the page of the whole program.
fn see_also() -> Vec<u8> {
    Roff::new()
        .control("SH", ["SEE ALSO"])
        .text([bold("yetifs"), "(1)".into()])
        .render()
        .into_bytes()
}

/// Turns the `.SH` section headings of rendered roff into `.SS` subsection headings, so a
/// command's sections nest under that command's own section of yetifs(1). Roff escapes text
/// lines that begin with a dot, so only real headings start with `.SH`.
fn demote_sections(roff: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(roff.len());
    for line in roff.split_inclusive(|&b| b == b'\n') {
        match line.strip_prefix(b".SH ") {
            Some(rest) => {
                out.extend_from_slice(b".SS ");
                out.extend_from_slice(rest);
            }
            None => out.extend_from_slice(line),
        }
    }
    out
}

/// Writes `bytes` to standard output, an error (a closed pipe) being reported, not a panic.
fn print_out(bytes: &[u8]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .context("cannot write to standard output")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_section_headings_are_demoted() {
        let roff = b".SH NAME\nx\n.SHOW\n\\&.SH not a heading\n.SH \"MORE OPTIONS\"\n";
        assert_eq!(
            demote_sections(roff),
            b".SS NAME\nx\n.SHOW\n\\&.SH not a heading\n.SS \"MORE OPTIONS\"\n"
        );
    }
}
