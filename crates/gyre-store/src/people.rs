//! The people of a team server and their tokens. A token is shown once, when made; the store
//! keeps only its SHA-256 (a token is 160 random bits, so a fast hash is enough: there is no
//! password to guess), a short public id to name it by, and when it was revoked.
//!
//! These operations run on the server's own store only: no client reaches them through `wire`.

use crate::sql::{Row, vals};
use crate::{StoreError, Tx};
use serde::{Deserialize, Serialize};

/// What a person may do. Ordered: each role may do what the ones before it may.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything.
    Viewer,
    /// Also imports, edits, trains, triages, diffs and serves.
    Member,
    /// Also promotes, rolls back and manages people.
    Maintainer,
}

impl Role {
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "viewer" => Some(Role::Viewer),
            "member" => Some(Role::Member),
            "maintainer" => Some(Role::Maintainer),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Member => "member",
            Role::Maintainer => "maintainer",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PersonRecord {
    pub name: String,
    pub role: Role,
    pub created_at: String,
    pub created_by: String,
}

/// A token as stored: never the token itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// The public name of the token (`tok_` and 8 hex digits), for lists and revocation.
    pub id: String,
    pub person: String,
    /// SHA-256 of the token, hex.
    #[serde(skip_serializing)]
    #[serde(default)]
    pub hash: String,
    /// What the person said it is for.
    pub label: String,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

fn person_row(r: Row) -> Result<PersonRecord, StoreError> {
    let role = r.text(1)?;
    Ok(PersonRecord {
        name: r.text(0)?,
        role: Role::parse(&role)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown role {role:?}")))?,
        created_at: r.text(2)?,
        created_by: r.text(3)?,
    })
}

fn token_row(r: Row) -> Result<TokenRecord, StoreError> {
    Ok(TokenRecord {
        id: r.text(0)?,
        person: r.text(1)?,
        hash: r.text(2)?,
        label: r.text(3)?,
        created_at: r.text(4)?,
        revoked_at: r.opt_text(5)?,
    })
}

const TOKEN_COLUMNS: &str = "id, person, hash, label, created_at, revoked_at";

impl Tx<'_> {
    pub fn insert_person(&self, p: &PersonRecord) -> Result<(), StoreError> {
        self.0.exec(
            "INSERT INTO people (name, role, created_at, created_by) VALUES (?1, ?2, ?3, ?4)",
            vals![&p.name, p.role.as_str(), &p.created_at, &p.created_by],
        )?;
        Ok(())
    }

    pub fn person(&self, name: &str) -> Result<Option<PersonRecord>, StoreError> {
        self.0
            .query_opt(
                "SELECT name, role, created_at, created_by FROM people WHERE name = ?1",
                vals![name],
            )?
            .map(person_row)
            .transpose()
    }

    pub fn people(&self) -> Result<Vec<PersonRecord>, StoreError> {
        self.0
            .query(
                "SELECT name, role, created_at, created_by FROM people ORDER BY name",
                &[],
            )?
            .into_iter()
            .map(person_row)
            .collect()
    }

    pub fn set_role(&self, name: &str, role: Role) -> Result<bool, StoreError> {
        Ok(self.0.exec(
            "UPDATE people SET role = ?2 WHERE name = ?1",
            vals![name, role.as_str()],
        )? == 1)
    }

    pub fn insert_token(&self, t: &TokenRecord) -> Result<(), StoreError> {
        self.0.exec(
            "INSERT INTO tokens (id, person, hash, label, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            vals![&t.id, &t.person, &t.hash, &t.label, &t.created_at],
        )?;
        Ok(())
    }

    /// Every token, or one person's, oldest first.
    pub fn tokens(&self, person: Option<&str>) -> Result<Vec<TokenRecord>, StoreError> {
        let rows = match person {
            Some(p) => self.0.query(
                &format!(
                    "SELECT {TOKEN_COLUMNS} FROM tokens WHERE person = ?1 ORDER BY created_at, id"
                ),
                vals![p],
            )?,
            None => self.0.query(
                &format!("SELECT {TOKEN_COLUMNS} FROM tokens ORDER BY created_at, id"),
                &[],
            )?,
        };
        rows.into_iter().map(token_row).collect()
    }

    /// The live token with this hash and its person.
    pub fn token_holder(
        &self,
        hash: &str,
    ) -> Result<Option<(TokenRecord, PersonRecord)>, StoreError> {
        let Some(row) = self.0.query_opt(
            &format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE hash = ?1 AND revoked_at IS NULL"),
            vals![hash],
        )?
        else {
            return Ok(None);
        };
        let token = token_row(row)?;
        let person = self
            .person(&token.person)?
            .ok_or_else(|| StoreError::Corrupt(format!("token {} names no person", token.id)))?;
        Ok(Some((token, person)))
    }

    /// Revokes a live token; false when there is none by that id.
    pub fn revoke_token(&self, id: &str, time: &str) -> Result<bool, StoreError> {
        Ok(self.0.exec(
            "UPDATE tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            vals![id, time],
        )? == 1)
    }
}

/// `n` random bytes from the kernel (a token's secret; a transaction's id).
pub fn random_bytes(n: usize) -> Result<Vec<u8>, StoreError> {
    use std::io::Read;
    let mut buf = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|e| StoreError::io("/dev/urandom", e))?;
    Ok(buf)
}

/// Lowercase hex of bytes (a token, an id, a shipped log batch).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize]);
        out.push(DIGITS[(b & 15) as usize]);
    }
    String::from_utf8(out).expect("hex digits are ASCII")
}

/// A new token: its text (shown once) and its record (which keeps only the hash).
pub fn new_token(
    person: &str,
    label: &str,
    time: &str,
) -> Result<(String, TokenRecord), StoreError> {
    let secret = format!("gyre_{}", hex(&random_bytes(20)?));
    let id = format!("tok_{}", hex(&random_bytes(4)?));
    Ok((
        secret.clone(),
        TokenRecord {
            id,
            person: person.to_string(),
            hash: token_hash(&secret),
            label: label.to_string(),
            created_at: time.to_string(),
            revoked_at: None,
        },
    ))
}

/// The stored form of a token.
pub fn token_hash(token: &str) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(token.as_bytes()))
}

/// A person's name: letters, digits, `.`, `_`, `-` and `@`, 1 to 64 of them (a name is shown
/// in the journal and the UI, and typed on command lines).
pub fn check_person_name(name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "{name:?} is not a person's name: use 1 to 64 letters, digits, '.', '_', '-' or '@'"
        )))
    }
}
