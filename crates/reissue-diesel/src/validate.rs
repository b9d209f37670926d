//! Input checks, done before anything reaches argon2 or the database.

use crate::UserError;

/// RFC 5321's limit on a forward path, less the angle brackets.
pub(crate) const MAX_EMAIL_BYTES: usize = 254;
/// RFC 5321's limit on a local part.
const MAX_LOCAL_BYTES: usize = 64;
/// Passwords, in characters.
pub(crate) const MIN_PASSWORD_CHARS: usize = 8;
/// Passwords, in characters: a bound on the work one request can cause.
pub(crate) const MAX_PASSWORD_CHARS: usize = 1024;
/// Roles, in bytes.
const MAX_ROLE_BYTES: usize = 64;

/// The normalised email, or [`UserError::InvalidEmail`].
pub(crate) fn email(raw: &str) -> Result<String, UserError> {
    let trimmed = raw.trim();
    // Bound the work before lower-casing an arbitrarily long input.
    if trimmed.len() > 4 * MAX_EMAIL_BYTES {
        return Err(UserError::InvalidEmail);
    }
    let email = trimmed.to_lowercase();
    let valid = email.len() <= MAX_EMAIL_BYTES
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && match email.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && local.len() <= MAX_LOCAL_BYTES
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !domain.contains("..")
            }
            None => false,
        };
    if valid {
        Ok(email)
    } else {
        Err(UserError::InvalidEmail)
    }
}

/// Checks a new password: 8 to 1024 characters, no control characters
/// (a NUL byte truncates the password in some other systems).
pub(crate) fn password(password: &str) -> Result<(), UserError> {
    // Four bytes per char at most: a cheap bound before counting.
    if password.len() > 4 * MAX_PASSWORD_CHARS {
        return Err(UserError::InvalidPassword(TOO_LONG));
    }
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(UserError::InvalidPassword(
            "the password must be at least 8 characters long",
        ));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(UserError::InvalidPassword(TOO_LONG));
    }
    if password.chars().any(char::is_control) {
        return Err(UserError::InvalidPassword(
            "the password must not contain control characters",
        ));
    }
    Ok(())
}

const TOO_LONG: &str = "the password must be at most 1024 characters long";

/// Checks roles and drops duplicates, keeping the first occurrence. Roles are
/// stored comma-separated, so a role cannot contain a comma.
pub(crate) fn roles(roles: &[&str]) -> Result<Vec<String>, UserError> {
    let mut out: Vec<String> = Vec::with_capacity(roles.len());
    for role in roles {
        if role.is_empty() {
            return Err(UserError::InvalidRole("a role must not be empty"));
        }
        if role.len() > MAX_ROLE_BYTES {
            return Err(UserError::InvalidRole(
                "a role must be at most 64 bytes long",
            ));
        }
        if role
            .chars()
            .any(|c| c == ',' || c.is_whitespace() || c.is_control())
        {
            return Err(UserError::InvalidRole(
                "a role must not contain commas, whitespace or control characters",
            ));
        }
        if !out.iter().any(|r| r == role) {
            out.push((*role).to_owned());
        }
    }
    Ok(out)
}

pub(crate) fn encode_roles(roles: &[String]) -> String {
    roles.join(",")
}

pub(crate) fn decode_roles(stored: &str) -> Vec<String> {
    stored
        .split(',')
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(email("  Alice@Example.COM ").unwrap(), "alice@example.com");
        assert_eq!(email("o'brien;--@x.io").unwrap(), "o'brien;--@x.io");
        for bad in [
            "",
            "   ",
            "plain",
            "@x.io",
            "a@",
            "a@b@x.io",
            "a@localhost",
            "a@.x.io",
            "a@x.io.",
            "a@x..io",
            "a b@x.io",
            "a@x.io\0",
            "a\u{7}@x.io",
            "a'; DROP TABLE users;--@x.io",
        ] {
            assert!(
                matches!(email(bad), Err(UserError::InvalidEmail)),
                "{bad:?}"
            );
        }
        let long = format!("{}@{}.io", "a".repeat(64), "b".repeat(254 - 64 - 4));
        assert_eq!(long.len(), 254);
        assert!(email(&long).is_ok());
        let longer = format!("{}@{}.io", "a".repeat(64), "b".repeat(254 - 64 - 3));
        assert!(matches!(email(&longer), Err(UserError::InvalidEmail)));
        let long_local = format!("{}@x.io", "a".repeat(65));
        assert!(matches!(email(&long_local), Err(UserError::InvalidEmail)));
    }

    #[test]
    fn passwords() {
        assert!(password("12345678").is_ok());
        assert!(password(&"é".repeat(1024)).is_ok());
        assert!(password("1234567").is_err());
        assert!(password(&"a".repeat(1025)).is_err());
        assert!(password(&"é".repeat(5000)).is_err());
        assert!(password("pass\0word").is_err());
    }

    #[test]
    fn role_lists() {
        assert_eq!(roles(&["admin", "ops", "admin"]).unwrap(), ["admin", "ops"]);
        assert!(roles(&[""]).is_err());
        assert!(roles(&["a,b"]).is_err());
        assert!(roles(&["a b"]).is_err());
        assert_eq!(decode_roles(&encode_roles(&[])), Vec::<String>::new());
        assert_eq!(decode_roles("admin,ops"), ["admin", "ops"]);
    }
}
