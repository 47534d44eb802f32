//! User names to uids, for `allow_users` (user-ppp `allow user NAME`).
//!
//! Read from `/etc/passwd` (passwd(5)): the crate forbids `unsafe`, which
//! `getpwnam_r` would need, and the accounts that run `tsunagi direct` are
//! local ssh accounts. A name that is all digits is taken as a uid.

use std::path::Path;

/// Path of the passwd database.
pub const PASSWD: &str = "/etc/passwd";

/// The uid of `name` in passwd(5) text, if listed.
pub fn uid_in(passwd: &str, name: &str) -> Option<u32> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let user = fields.next()?;
        let _password = fields.next()?;
        let uid = fields.next()?;
        (user == name).then(|| uid.parse().ok()).flatten()
    })
}

/// The uid of user `name` (or `name` itself when it is a number).
pub fn uid_of(name: &str) -> Option<u32> {
    uid_of_in(Path::new(PASSWD), name)
}

/// [`uid_of`] against another passwd file (for tests).
pub fn uid_of_in(passwd: &Path, name: &str) -> Option<u32> {
    if !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()) {
        return name.parse().ok();
    }
    let text = std::fs::read_to_string(passwd).ok()?;
    uid_in(&text, name)
}

/// Whether `uid` belongs to one of `allowed` (names or numeric uids).
/// Names are resolved at each check, so an account created after the
/// daemon started is honoured.
pub fn uid_allowed(uid: u32, allowed: &[String]) -> bool {
    allowed.iter().any(|name| uid_of(name) == Some(uid))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PW: &str = "root:x:0:0:root:/root:/bin/bash\n\
                      nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n\
                      broken line\n\
                      pppossh:x:1001:1001::/home/pppossh:/bin/sh\n";

    #[test]
    fn names_resolve() {
        assert_eq!(uid_in(PW, "root"), Some(0));
        assert_eq!(uid_in(PW, "pppossh"), Some(1001));
        assert_eq!(uid_in(PW, "ppp"), None);
        assert_eq!(uid_in(PW, "broken line"), None);
        assert_eq!(uid_of("1234"), Some(1234));
    }

    #[test]
    fn allow_list() {
        assert!(uid_allowed(0, &["root".into()]));
        assert!(uid_allowed(4242, &["nobody-such".into(), "4242".into()]));
        assert!(!uid_allowed(65534, &["root".into()]));
        assert!(!uid_allowed(0, &[]));
    }
}
