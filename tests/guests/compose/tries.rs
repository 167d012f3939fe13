//! What both composition guests try: the environment, a file and an outbound connection.

/// The capability tries both guests make.
pub fn tries() -> Vec<String> {
    let env = std::env::vars().count();
    let mut lines = vec![format!("env {env}")];
    for path in ["/data/secret.txt"] {
        lines.push(match std::fs::read_to_string(path) {
            Ok(text) => format!("file {path} ok {}", text.trim()),
            Err(e) => format!("file {path} denied {e}"),
        });
    }
    // Port 9 (discard) has no listener here: an allowed connect is refused by the peer,
    // a denied one never leaves the sandbox.
    let addr = "127.0.0.1:9";
    lines.push(match std::net::TcpStream::connect(addr) {
        Ok(_) => format!("tcp {addr} connected"),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => format!("tcp {addr} refused"),
        Err(e) => format!("tcp {addr} denied {e}"),
    });
    lines
}
