//! Who is who: people with linked accounts, departments with their channels, members and leads,
//! admins, and who may flag messages.
//!
//! Owns permission checks, so every state change asks here first. Built from the config; must
//! not read files, the environment or a platform API.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use super::types::{ChannelRef, ParseError, PersonId, Platform, RoleRef, UserRef};

/// Refusals from a permission check; the message is shown to the user as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    /// The actor lacks the needed standing.
    #[error("You need to be {needed} to {action}. {fix}")]
    Denied {
        /// The standing, e.g. "a member of billing".
        needed: String,
        /// What was attempted.
        action: String,
        /// How to get access.
        fix: &'static str,
    },
}

const FIX: &str =
    "Ask a Switchboard admin to add you (or your group or role) in the configuration.";

/// A reference to someone in a member, lead or admin list.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub enum MemberRef {
    /// A configured person, by id: `person:alice`.
    Person(PersonId),
    /// One platform account: `slack:U123`, `discord:123`.
    User(UserRef),
    /// A Slack user group (`slack-group:S123`) or Discord role (`discord-role:123`).
    Role(RoleRef),
}

impl fmt::Display for MemberRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemberRef::Person(p) => write!(f, "person:{p}"),
            MemberRef::User(u) => write!(f, "{u}"),
            MemberRef::Role(r) => write!(f, "{r}"),
        }
    }
}

const MEMBER_FORM: &str = "a member written `person:alice`, `slack:U0123ABC`, `discord:1234`, \
                           `slack-group:S0123ABC` or `discord-role:1234`";

impl FromStr for MemberRef {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ParseError::Invalid {
            input: s.to_string(),
            expected: MEMBER_FORM,
        };
        let (kind, id) = s.trim().split_once(':').ok_or_else(bad)?;
        if id.is_empty() || id.contains(char::is_whitespace) {
            return Err(bad());
        }
        let alnum = id.chars().all(|c| c.is_ascii_alphanumeric());
        let digits = id.chars().all(|c| c.is_ascii_digit());
        match kind {
            "person" => Ok(MemberRef::Person(PersonId(id.to_string()))),
            "slack" | "discord" => Ok(MemberRef::User(s.trim().parse().map_err(|_| bad())?)),
            "slack-group" if alnum => Ok(MemberRef::Role(RoleRef::new(Platform::Slack, id))),
            "discord-role" if digits => Ok(MemberRef::Role(RoleRef::new(Platform::Discord, id))),
            _ => Err(bad()),
        }
    }
}

/// One human, possibly with an account on each platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Person {
    /// Stable id used in config (`person:alice`).
    pub id: PersonId,
    /// Display name.
    pub name: String,
    /// Slack user id.
    pub slack: Option<String>,
    /// Discord user id.
    pub discord: Option<String>,
}

impl Person {
    /// Whether `user` is one of this person's accounts.
    pub fn owns(&self, user: &UserRef) -> bool {
        let id = match user.platform {
            Platform::Slack => &self.slack,
            Platform::Discord => &self.discord,
        };
        id.as_deref() == Some(user.id.as_str())
    }

    /// This person's account on `platform`, if linked.
    pub fn account(&self, platform: Platform) -> Option<UserRef> {
        let id = match platform {
            Platform::Slack => &self.slack,
            Platform::Discord => &self.discord,
        };
        id.as_ref().map(|id| UserRef::new(platform, id.clone()))
    }
}

/// A team that receives tickets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Department {
    /// Unique lowercase name, used in commands (`billing`).
    pub name: String,
    /// Channels that receive its alerts, on either platform.
    pub channels: Vec<ChannelRef>,
    /// Who works its tickets.
    pub members: Vec<MemberRef>,
    /// Who leads it (leads count as members).
    pub leads: Vec<MemberRef>,
}

/// Who may turn a message into a ticket with a flag emoji or the message action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum FlagPolicy {
    /// Everyone in the workspace or server.
    Anyone,
    /// Members (and leads) of any department, and admins.
    Members,
    /// Only the listed people, accounts, groups or roles (and admins).
    Listed(Vec<MemberRef>),
}

/// The standing a command requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Permission {
    /// Anyone who can see the bot.
    Anyone,
    /// A member or lead of the department concerned (of any, when none is concerned).
    Member,
    /// A lead of the department concerned (of any, when none is concerned).
    Lead,
    /// A Switchboard admin.
    Admin,
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Permission::Anyone => "anyone",
            Permission::Member => "department member",
            Permission::Lead => "department lead",
            Permission::Admin => "admin",
        })
    }
}

/// Someone acting in chat, as the adapter saw them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Actor {
    /// Their platform account.
    pub user: UserRef,
    /// Slack user groups or Discord roles they hold, as far as the adapter knows.
    pub roles: Vec<RoleRef>,
}

impl Actor {
    /// An actor with no known groups or roles.
    pub fn user(user: UserRef) -> Self {
        Self {
            user,
            roles: Vec::new(),
        }
    }
}

/// People, departments, admins and the flag policy, with the checks built on them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Directory {
    /// Configured people.
    pub people: Vec<Person>,
    /// Configured departments.
    pub departments: Vec<Department>,
    /// Admins: may do everything.
    pub admins: Vec<MemberRef>,
    /// Who may flag.
    pub flag_policy: FlagPolicy,
    /// The names the platforms gave for accounts not under `[[people]]`.
    #[serde(skip)]
    pub names: Names,
}

/// How many platform names a process keeps; past it, the oldest learned go first.
const MAX_NAMES: usize = 100_000;

/// How long a learned name (or a platform's "no name") is trusted before it is asked again,
/// so a renamed person shows the new name within a day.
const NAME_FOR: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// What is known of accounts' names: the name and when it was learned, or when the platform
/// last had none to give.
#[derive(Default)]
struct Known {
    names: std::collections::HashMap<UserRef, (String, std::time::Instant)>,
    misses: std::collections::HashMap<UserRef, std::time::Instant>,
}

/// The names the platforms gave for accounts not listed under `[[people]]` (a flagged
/// message's author, someone who claimed a ticket), shared by every clone of the directory
/// and filled by the desk, so everything that names a person shows a name people can read
/// instead of `slack:U0AGENT`. Configuration never holds them (it compares equal without).
#[derive(Clone, Default)]
pub struct Names(std::sync::Arc<std::sync::RwLock<Known>>);

impl Names {
    /// The learned name of `user`.
    pub fn get(&self, user: &UserRef) -> Option<String> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .names
            .get(user)
            .map(|(n, _)| n.clone())
    }

    /// Remembers `name` for `user`; true when it was new or changed. Blank names are ignored.
    pub fn learn(&self, user: &UserRef, name: &str) -> bool {
        let name = name.trim();
        if name.is_empty() {
            return false;
        }
        let mut known = self.0.write().unwrap_or_else(|e| e.into_inner());
        known.misses.remove(user);
        let changed = known.names.get(user).map(|(n, _)| n.as_str()) != Some(name);
        if known.names.len() >= MAX_NAMES {
            known.names.clear();
        }
        known
            .names
            .insert(user.clone(), (name.to_string(), std::time::Instant::now()));
        changed
    }

    /// Remembers that `user`'s platform had no name to give now (not asked again for a day).
    pub fn missed(&self, user: &UserRef) {
        let mut known = self.0.write().unwrap_or_else(|e| e.into_inner());
        if known.misses.len() >= MAX_NAMES {
            known.misses.clear();
        }
        known.misses.insert(user.clone(), std::time::Instant::now());
    }

    /// Whether `user`'s platform is worth asking: nothing known, or known for a day.
    pub fn stale(&self, user: &UserRef) -> bool {
        let known = self.0.read().unwrap_or_else(|e| e.into_inner());
        let fresh = |at: &std::time::Instant| at.elapsed() < NAME_FOR;
        !(known.names.get(user).is_some_and(|(_, at)| fresh(at))
            || known.misses.get(user).is_some_and(fresh))
    }

    /// How many names are known.
    pub fn len(&self) -> usize {
        self.0.read().unwrap_or_else(|e| e.into_inner()).names.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::fmt::Debug for Names {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Names({} learned)", self.len())
    }
}

impl PartialEq for Names {
    /// Learned names are not configuration: two directories with the same configuration are
    /// equal whatever they learned.
    fn eq(&self, _: &Names) -> bool {
        true
    }
}

impl Directory {
    /// The configured person owning `user`, if any.
    pub fn person_of(&self, user: &UserRef) -> Option<&Person> {
        self.people.iter().find(|p| p.owns(user))
    }

    /// Whether two accounts belong to the same human (the same account, or linked by a person).
    pub fn same_person(&self, a: &UserRef, b: &UserRef) -> bool {
        a == b || self.person_of(a).is_some_and(|p| p.owns(b))
    }

    /// Every account of the human behind `user`: the linked accounts of its person (on each
    /// platform), else `user` alone.
    pub fn accounts(&self, user: &UserRef) -> Vec<UserRef> {
        let mut all = vec![user.clone()];
        if let Some(p) = self.person_of(user) {
            for platform in [Platform::Slack, Platform::Discord] {
                if let Some(a) = p.account(platform).filter(|a| !all.contains(a)) {
                    all.push(a);
                }
            }
        }
        all
    }

    /// A stable key for statistics: `person:<id>` when linked, else the account.
    pub fn identity_key(&self, user: &UserRef) -> String {
        match self.person_of(user) {
            Some(p) => format!("person:{}", p.id),
            None => user.to_string(),
        }
    }

    /// A display name: the person's name when linked, else the name their platform gave
    /// (mentions neutralised), else the account.
    pub fn display_name(&self, user: &UserRef) -> String {
        if let Some(source) = user.automation_source() {
            return format!("{source} (automation)");
        }
        match self.person_of(user) {
            Some(p) => p.name.clone(),
            None => match self.names.get(user) {
                Some(name) => super::message::neutralize_mentions(&name),
                None => user.to_string(),
            },
        }
    }

    /// Whether `user`'s platform should be asked for their name: not a configured person,
    /// not an automation, and no name (or "none") learned within the last day.
    pub fn wants_name(&self, user: &UserRef) -> bool {
        user.automation_source().is_none()
            && self.person_of(user).is_none()
            && self.names.stale(user)
    }

    /// The department called `name` (case-insensitive).
    pub fn department(&self, name: &str) -> Option<&Department> {
        self.departments
            .iter()
            .find(|d| d.name.eq_ignore_ascii_case(name.trim()))
    }

    /// Whom an escalation for `dept` pings: its leads' accounts on every platform (a person
    /// through each linked account), and lead groups or roles as group mentions.
    pub fn lead_mentions(&self, dept: &Department) -> Vec<super::types::Mention> {
        use super::types::Mention;
        let mut out = Vec::new();
        for lead in &dept.leads {
            match lead {
                MemberRef::Person(id) => {
                    if let Some(p) = self.people.iter().find(|p| &p.id == id) {
                        for platform in [Platform::Slack, Platform::Discord] {
                            out.extend(p.account(platform).map(Mention::User));
                        }
                    }
                }
                MemberRef::User(u) => out.push(Mention::User(u.clone())),
                MemberRef::Role(r) => out.push(Mention::Group(r.clone())),
            }
        }
        out.dedup();
        out
    }

    /// Department names, in config order.
    pub fn department_names(&self) -> Vec<&str> {
        self.departments.iter().map(|d| d.name.as_str()).collect()
    }

    fn matches(&self, actor: &Actor, m: &MemberRef) -> bool {
        match m {
            MemberRef::User(u) => self.same_person(&actor.user, u),
            MemberRef::Person(id) => self.person_of(&actor.user).is_some_and(|p| &p.id == id),
            MemberRef::Role(r) => actor.roles.contains(r),
        }
    }

    fn any_matches(&self, actor: &Actor, list: &[MemberRef]) -> bool {
        list.iter().any(|m| self.matches(actor, m))
    }

    /// Whether the actor is an admin.
    pub fn is_admin(&self, actor: &Actor) -> bool {
        self.any_matches(actor, &self.admins)
    }

    /// Whether the actor leads `dept`.
    pub fn is_lead(&self, actor: &Actor, dept: &Department) -> bool {
        self.any_matches(actor, &dept.leads)
    }

    /// Whether the actor is a member or lead of `dept`.
    pub fn is_member(&self, actor: &Actor, dept: &Department) -> bool {
        self.is_lead(actor, dept) || self.any_matches(actor, &dept.members)
    }

    /// Whether the actor is staff: an admin or a member of any department.
    pub fn is_staff(&self, actor: &Actor) -> bool {
        self.is_admin(actor) || self.departments.iter().any(|d| self.is_member(actor, d))
    }

    /// Whether the actor may flag a message.
    pub fn may_flag(&self, actor: &Actor) -> bool {
        match &self.flag_policy {
            FlagPolicy::Anyone => true,
            FlagPolicy::Members => self.is_staff(actor),
            FlagPolicy::Listed(list) => self.is_admin(actor) || self.any_matches(actor, list),
        }
    }

    /// Refuses unless the actor has `needed` standing, for `dept` when one is concerned.
    ///
    /// `action` completes "You need to be … to {action}".
    pub fn check(
        &self,
        actor: &Actor,
        needed: Permission,
        dept: Option<&Department>,
        action: &str,
    ) -> Result<(), AccessError> {
        if self.is_admin(actor) {
            return Ok(());
        }
        let (ok, standing) = match (needed, dept) {
            (Permission::Anyone, _) => (true, String::new()),
            (Permission::Member, Some(d)) => {
                (self.is_member(actor, d), format!("a member of {}", d.name))
            }
            (Permission::Member, None) => (
                self.departments.iter().any(|d| self.is_member(actor, d)),
                "a member of a department".to_string(),
            ),
            (Permission::Lead, Some(d)) => {
                (self.is_lead(actor, d), format!("a lead of {}", d.name))
            }
            (Permission::Lead, None) => (
                self.departments.iter().any(|d| self.is_lead(actor, d)),
                "a department lead".to_string(),
            ),
            (Permission::Admin, _) => (false, "a Switchboard admin".to_string()),
        };
        if ok {
            Ok(())
        } else {
            Err(AccessError::Denied {
                needed: standing,
                action: action.to_string(),
                fix: FIX,
            })
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A directory used by core tests: alice (admin), bob (billing lead), carol (billing member
    /// by Slack group), dave (it member by Discord role), all linked across platforms.
    pub(crate) fn sample() -> Directory {
        let person = |id: &str, name: &str, slack: &str, discord: &str| Person {
            id: PersonId(id.into()),
            name: name.into(),
            slack: Some(slack.into()),
            discord: Some(discord.into()),
        };
        Directory {
            people: vec![
                person("alice", "Alice", "UALICE", "100"),
                person("bob", "Bob", "UBOB", "200"),
            ],
            departments: vec![
                Department {
                    name: "billing".into(),
                    channels: vec!["slack:CBILL".parse().unwrap()],
                    members: vec!["slack-group:SBILLING".parse().unwrap()],
                    leads: vec!["person:bob".parse().unwrap()],
                },
                Department {
                    name: "it".into(),
                    channels: vec!["discord:900".parse().unwrap()],
                    members: vec![
                        "discord-role:77".parse().unwrap(),
                        "slack:UIT".parse().unwrap(),
                    ],
                    leads: vec![],
                },
            ],
            admins: vec!["person:alice".parse().unwrap()],
            flag_policy: FlagPolicy::Members,
            names: Names::default(),
        }
    }

    fn slack(id: &str) -> Actor {
        Actor::user(UserRef::new(Platform::Slack, id))
    }

    fn discord(id: &str) -> Actor {
        Actor::user(UserRef::new(Platform::Discord, id))
    }

    #[test]
    fn member_refs_parse_every_form_and_refuse_others() {
        for ok in [
            "person:alice",
            "slack:U1",
            "discord:1",
            "slack-group:S1",
            "discord-role:2",
        ] {
            assert_eq!(ok.parse::<MemberRef>().unwrap().to_string(), ok);
        }
        for bad in ["alice", "discord-role:abc", "team:1", "slack:", "person: x"] {
            assert!(bad.parse::<MemberRef>().is_err(), "{bad}");
        }
    }

    #[test]
    fn linked_accounts_are_one_person_on_both_platforms() {
        let dir = sample();
        let billing = dir.department("billing").unwrap();
        assert!(dir.is_lead(&slack("UBOB"), billing));
        assert!(
            dir.is_lead(&discord("200"), billing),
            "bob's Discord account"
        );
        assert!(dir.is_admin(&discord("100")), "alice's Discord account");
        assert!(dir.same_person(
            &UserRef::new(Platform::Slack, "UALICE"),
            &UserRef::new(Platform::Discord, "100")
        ));
        assert_eq!(
            dir.identity_key(&UserRef::new(Platform::Discord, "200")),
            "person:bob"
        );
    }

    #[test]
    fn groups_and_roles_grant_membership() {
        let dir = sample();
        let billing = dir.department("BILLING").unwrap();
        let mut carol = slack("UCAROL");
        assert!(!dir.is_member(&carol, billing));
        carol.roles.push(RoleRef::new(Platform::Slack, "SBILLING"));
        assert!(dir.is_member(&carol, billing));
        let mut dave = discord("400");
        dave.roles.push(RoleRef::new(Platform::Discord, "77"));
        assert!(dir.is_member(&dave, dir.department("it").unwrap()));
        assert!(!dir.is_member(&dave, billing));
    }

    #[test]
    fn checks_refuse_with_the_standing_needed_and_admins_pass_everything() {
        let dir = sample();
        let billing = dir.department("billing").unwrap();
        let stranger = slack("UNOBODY");
        let err = dir
            .check(&stranger, Permission::Member, Some(billing), "claim T-1")
            .unwrap_err()
            .to_string();
        assert!(err.contains("a member of billing to claim T-1"), "{err}");
        assert!(dir.check(&stranger, Permission::Anyone, None, "x").is_ok());
        let it_member = slack("UIT");
        assert!(dir.check(&it_member, Permission::Member, None, "x").is_ok());
        assert!(dir.check(&it_member, Permission::Lead, None, "x").is_err());
        assert!(dir
            .check(&slack("UBOB"), Permission::Lead, Some(billing), "x")
            .is_ok());
        assert!(dir
            .check(&slack("UBOB"), Permission::Admin, None, "x")
            .is_err());
        for needed in [Permission::Member, Permission::Lead, Permission::Admin] {
            assert!(dir
                .check(&slack("UALICE"), needed, Some(billing), "x")
                .is_ok());
        }
    }

    #[test]
    fn flag_policy_is_enforced() {
        let mut dir = sample();
        assert!(!dir.may_flag(&slack("UNOBODY")));
        assert!(dir.may_flag(&slack("UIT")));
        dir.flag_policy = FlagPolicy::Anyone;
        assert!(dir.may_flag(&slack("UNOBODY")));
        dir.flag_policy = FlagPolicy::Listed(vec!["discord-role:5".parse().unwrap()]);
        assert!(!dir.may_flag(&slack("UIT")));
        let mut mod_ = discord("9");
        mod_.roles.push(RoleRef::new(Platform::Discord, "5"));
        assert!(dir.may_flag(&mod_));
        assert!(dir.may_flag(&slack("UALICE")), "admins may always flag");
    }
}
