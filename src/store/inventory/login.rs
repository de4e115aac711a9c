//! Why a connection to MySQL failed, in words a student can act on.
//!
//! "cannot connect … Is it running?" was the answer to everything, also when MySQL was
//! running and refused the password, or when MySQL 8.4's `caching_sha2_password` wanted a
//! secure channel for its first login. sqlx is built with TLS (used when the server offers
//! it, as MySQL 8 does) and with RSA password exchange (for servers without TLS), so that
//! first login works; what is left is told apart here.

use crate::config::START_HINT;

/// What went wrong, as far as the driver's error tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginProblem {
    /// Nothing answers at the address (refused, unreachable, timed out).
    NotAnswering,
    /// MySQL answered and refused the user or password.
    Refused,
    /// The database in the URL does not exist.
    NoDatabase,
    /// The TLS handshake failed.
    Tls,
    /// Anything else.
    Other,
}

/// MySQL's error numbers for a refused login (`ER_ACCESS_DENIED_ERROR`,
/// `ER_ACCESS_DENIED_NO_PASSWORD_ERROR`, `ER_DBACCESS_DENIED_ERROR`).
const ACCESS_DENIED: [u16; 3] = [1045, 1698, 1044];
/// `ER_BAD_DB_ERROR`.
const UNKNOWN_DATABASE: u16 = 1049;

/// Sorts a connection error into a [`LoginProblem`].
pub fn classify(error: &sqlx::Error) -> LoginProblem {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut => LoginProblem::NotAnswering,
        sqlx::Error::Tls(_) => LoginProblem::Tls,
        // MySQL's error number, not the SQLSTATE `code()` gives (28000, 42000 are shared
        // by many errors).
        sqlx::Error::Database(db) => match db
            .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
            .map(|e| e.number())
        {
            Some(number) if ACCESS_DENIED.contains(&number) => LoginProblem::Refused,
            Some(UNKNOWN_DATABASE) => LoginProblem::NoDatabase,
            _ => LoginProblem::Other,
        },
        // A server that insists on a secure channel for the password, with no TLS and no
        // RSA key to use, says so in a protocol error.
        sqlx::Error::Protocol(message) if message.to_ascii_lowercase().contains("password") => {
            LoginProblem::Refused
        }
        _ => LoginProblem::Other,
    }
}

/// The message for a connection to `address` (user `user`) that failed with `detail`.
pub fn explain(address: &str, user: &str, detail: &sqlx::Error) -> String {
    match classify(detail) {
        LoginProblem::NotAnswering => format!(
            "nothing answers as MySQL at {address} ({detail}). Is it running? Start it with \
             `{START_HINT}`, then run `edm setup`; or keep the stock in a SQLite file instead \
             (no server): --mysql-url sqlite://$HOME/edm-inventory.db, then `edm setup`"
        ),
        LoginProblem::Refused => format!(
            "MySQL at {address} refused user `{user}` ({detail}). Check the user and password \
             in --mysql-url or EDM_MYSQL_URL (the compose stack's are root / inventorypw)"
        ),
        LoginProblem::NoDatabase => format!(
            "MySQL at {address} has no such database ({detail}): run `edm setup`, which creates it"
        ),
        LoginProblem::Tls => format!(
            "the TLS handshake with MySQL at {address} failed ({detail}). Fix the server's TLS \
             set-up, or add ?ssl-mode=disabled to the URL to log in without TLS (MySQL 8 then \
             needs RSA password exchange, which edm does)"
        ),
        LoginProblem::Other => format!("cannot log in to MySQL at {address}: {detail}"),
    }
}

/// The user name of a `mysql://user:password@host/db` URL.
pub fn user_of(url: &str) -> String {
    url::Url::parse(url)
        .map(|u| u.username().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_connection_says_nothing_answers() {
        let refused = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(classify(&refused), LoginProblem::NotAnswering);
        let text = explain("127.0.0.1:3306/inventory", "root", &refused);
        assert!(
            text.contains("nothing answers") && text.contains("docker compose"),
            "{text}"
        );
        assert_eq!(user_of("mysql://root:pw@127.0.0.1:3306/inventory"), "root");
    }
}
