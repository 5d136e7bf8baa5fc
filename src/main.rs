//! The `yetifs` command.
fn main() {
    eprintln!("yetifs: no command is available yet");
    std::process::exit(2);
}
