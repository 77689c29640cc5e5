"""CURVE keys for the pyzmq test clients, from the files `depthpilot keygen` writes:
DIR/NAME.key, DIR/NAME.pub and the server's DIR/server.pub, one Z85 line (40 characters) each."""


def key(path):
    """One Z85 key from a key file."""
    with open(path, encoding="ascii") as f:
        text = f.read().strip()
    if len(text) != 40:
        raise SystemExit(f"{path}: not a Z85 CURVE key (40 characters), got {len(text)}")
    return text.encode("ascii")


def secure(sock, keys_dir, name):
    """Makes `sock` a CURVE client with the key pair NAME in `keys_dir` and its server.pub."""
    sock.curve_secretkey = key(f"{keys_dir}/{name}.key")
    sock.curve_publickey = key(f"{keys_dir}/{name}.pub")
    sock.curve_serverkey = key(f"{keys_dir}/server.pub")
