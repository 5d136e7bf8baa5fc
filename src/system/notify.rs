//! systemd's readiness protocol (`sd_notify`), so a `Type=notify` unit is "started" only once
//! the mount is live and "stopping" while pending uploads are flushed. systemd passes a unix
//! datagram socket in `$NOTIFY_SOCKET` (a path, or an abstract name written with a leading
//! `@`); each message is one datagram of `KEY=VALUE` lines. Without the variable nothing is
//! sent, so the same binary runs unchanged outside systemd.
use std::ffi::OsStr;
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// The variable systemd sets for services of `Type=notify`.
pub const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

/// Sends `message` (lines such as `READY=1`) to the socket `$NOTIFY_SOCKET` names. Returns
/// whether there was one to send to.
pub fn notify(message: &str) -> io::Result<bool> {
    match std::env::var_os(NOTIFY_SOCKET).filter(|v| !v.is_empty()) {
        Some(socket) => notify_to(&socket, message).map(|()| true),
        None => Ok(false),
    }
}

/// Sends `message` to the notification socket `socket` (a path, or `@name` for an abstract
/// socket).
pub fn notify_to(socket: &OsStr, message: &str) -> io::Result<()> {
    let bytes = socket.as_bytes();
    let address = match bytes.strip_prefix(b"@") {
        Some(name) => SocketAddr::from_abstract_name(name)?,
        None => SocketAddr::from_pathname(socket)?,
    };
    let sender = UnixDatagram::unbound()?;
    let sent = sender.send_to_addr(message.as_bytes(), &address)?;
    if sent != message.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "the notification was cut short",
        ));
    }
    Ok(())
}

/// Tells systemd the service is ready, with a status line; failures are logged, never fatal.
pub fn ready(status: &str) {
    send(&format!(
        "READY=1\nSTATUS={status}\nMAINPID={}",
        std::process::id()
    ));
}

/// Tells systemd the service is stopping, with a status line.
pub fn stopping(status: &str) {
    send(&format!("STOPPING=1\nSTATUS={status}"));
}

/// Updates the status line systemd shows.
pub fn status(status: &str) {
    send(&format!("STATUS={status}"));
}

fn send(message: &str) {
    if let Err(e) = notify(message) {
        log::warn!("cannot notify systemd ({message:?}): {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_reaches_a_socket_named_by_path_as_one_datagram() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let receiver = UnixDatagram::bind(&path).unwrap();
        notify_to(path.as_os_str(), "READY=1\nSTATUS=mounted").unwrap();
        let mut buf = [0u8; 256];
        let n = receiver.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=mounted");
    }

    #[test]
    fn a_leading_at_names_an_abstract_socket() {
        let name = format!("yetifs-test-notify-{}", std::process::id());
        let address = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let receiver = UnixDatagram::bind_addr(&address).unwrap();
        notify_to(OsStr::new(&format!("@{name}")), "STOPPING=1").unwrap();
        let mut buf = [0u8; 64];
        let n = receiver.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1");
    }

    #[test]
    fn a_missing_socket_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(notify_to(dir.path().join("none").as_os_str(), "READY=1").is_err());
    }
}
