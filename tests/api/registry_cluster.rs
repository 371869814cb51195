//! A PostgreSQL cluster of one test's own, to stop and start again under
//! a running server: the shared cluster of `registry_helpers` serves
//! every other PostgreSQL test of the run, which an outage would break.
//!
//! The server reaches it over TCP, as in production: a stopped server's
//! port refuses connections, which the pool retries until its wait ends
//! (a missing unix socket fails at once and would hide that wait).

use std::path::PathBuf;

use tempfile::TempDir;

use crate::registry_helpers::{create_database, init_cluster, pg_ctl_stop, start_cluster};

/// A running cluster, stopped (immediately) when dropped.
pub struct OwnCluster {
    data_dir: PathBuf,
    socket_dir: PathBuf,
    /// Its TCP port on 127.0.0.1, which also names its socket.
    port: u16,
    root: TempDir,
}

impl OwnCluster {
    /// A new cluster, started.
    pub fn start() -> OwnCluster {
        let root = tempfile::tempdir().unwrap();
        let (data_dir, socket_dir) = init_cluster(root.path());
        // A port free now; nothing else of the tests listens on TCP.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let cluster = OwnCluster {
            data_dir,
            socket_dir,
            port,
            root,
        };
        cluster.resume();
        cluster
    }

    /// A new empty database, as a `postgres://` URL over TCP.
    pub fn database(&self) -> String {
        let name = create_database(&self.socket_dir, self.port);
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// `pg_ctl stop -m fast`: every session is ended (`57P01
    /// admin_shutdown`) and the port closes; returns once it is down.
    pub fn stop(&self) {
        pg_ctl_stop(&self.data_dir, "fast");
    }

    /// Starts the cluster again; returns once it accepts connections.
    pub fn resume(&self) {
        let log = self.root.path().join("server.log");
        start_cluster(&self.data_dir, &self.socket_dir, &log, self.port, true);
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        pg_ctl_stop(&self.data_dir, "immediate");
    }
}
