//! The web view over real HTTP: sign-in links from chat (once, ten minutes), the session
//! cookie and sign-out, the CSRF token on forms, who sees which tickets and dashboards, the
//! list's filters and full-text search, and changes from a page going through the desk.
//! (`browser.rs` walks the same pages in a real Chromium.)

use switchboard::core::clock::Clock;
use switchboard::core::directory::Actor;
use switchboard::core::message::OutKind;
use switchboard::core::types::{Status, TicketRef};

use crate::helpers::*;

/// A browser without one: no redirects followed, cookies handled by hand.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The path of the sign-in link `/ticket web` answers `actor` with (the test config's
/// public URL is not where the test server listens).
pub async fn link_for(app: &TestApp, actor: &Actor, line: &str) -> String {
    let answer = app.ok(actor, line).await;
    let start = answer
        .find("http://127.0.0.1:8080/ui/signin/")
        .unwrap_or_else(|| panic!("no sign-in link in {answer}"));
    let link = answer[start..]
        .split_whitespace()
        .next()
        .unwrap()
        .trim_end_matches(['.', ')']);
    link.trim_start_matches("http://127.0.0.1:8080").to_string()
}

/// The token at the end of a sign-in path.
fn token_of(path: &str) -> &str {
    path.rsplit('/').next().unwrap()
}

/// Posts a sign-in link's token: the status, the `Location` and the `Set-Cookie` header.
async fn sign_in_with(base: &str, path: &str) -> (u16, String, String) {
    let r = client()
        .post(format!("{base}/ui/signin"))
        .form(&[("token", token_of(path))])
        .send()
        .await
        .unwrap();
    let header = |name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    (
        r.status().as_u16(),
        header("location"),
        header("set-cookie"),
    )
}

/// A signed-in session: its cookie and CSRF token.
pub struct Session {
    base: String,
    cookie: String,
    csrf: String,
}

impl Session {
    /// Signs `actor` in through a fresh link from chat.
    pub async fn start(app: &TestApp, base: &str, actor: &Actor) -> Session {
        let path = link_for(app, actor, "/ticket web").await;
        let (status, _, set_cookie) = sign_in_with(base, &path).await;
        assert_eq!(status, 303, "{set_cookie}");
        let cookie = set_cookie.split(';').next().unwrap().to_string();
        let mut s = Session {
            base: base.to_string(),
            cookie,
            csrf: String::new(),
        };
        let (_, page) = s.get("/ui/tickets").await;
        s.csrf = page
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("a CSRF token on the page")
            .to_string();
        s
    }

    /// GETs a page: its status and body.
    pub async fn get(&self, path: &str) -> (u16, String) {
        let r = client()
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// Posts a form with this session's CSRF token (or `csrf` when given): status, Location,
    /// body.
    pub async fn post(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        csrf: Option<&str>,
    ) -> (u16, String, String) {
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        form.push(("csrf", csrf.unwrap_or(&self.csrf)));
        let r = client()
            .post(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .form(&form)
            .send()
            .await
            .unwrap();
        let location = r
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        (r.status().as_u16(), location, r.text().await.unwrap())
    }
}

/// Opens a ticket with `/ticket new` as `actor`; its reference.
async fn open(app: &TestApp, actor: &Actor, line: &str) -> TicketRef {
    let answer = app.ok(actor, &format!("/ticket new {line}")).await;
    let id = answer
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("no ticket in {answer}"));
    id.parse().unwrap()
}

async fn a_link_signs_in_once_within_ten_minutes(app: TestApp) {
    let (base, _stop) = serve_http(&app).await;
    let path = link_for(&app, &bob(), "/ticket web").await;
    // Following the link shows a button; it does not use the link up (previews follow links).
    let page = client().get(format!("{base}{path}")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["referrer-policy"], "no-referrer");
    assert_eq!(page.headers()["cache-control"], "no-store");
    assert!(page.text().await.unwrap().contains(token_of(&path)));

    // Another site cannot post the sign-in (a login under someone else's link), and trying
    // does not use the link up.
    let r = client()
        .post(format!("{base}/ui/signin"))
        .header("sec-fetch-site", "cross-site")
        .form(&[("token", token_of(&path))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let (status, location, cookie) = sign_in_with(&base, &path).await;
    assert_eq!((status, location.as_str()), (303, "/ui/tickets"));
    assert!(cookie.starts_with("switchboard="), "{cookie}");
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    // Plain HTTP on loopback: a Secure cookie would never come back.
    assert!(!cookie.contains("Secure"), "{cookie}");
    // The database keeps only the token's hash.
    let stored = app
        .desk
        .store
        .take_web_link(token_of(&path), app.clock.now())
        .await
        .unwrap();
    assert_eq!(stored, switchboard::store::WebLink::Unknown);

    let (status, _, _) = sign_in_with(&base, &path).await;
    assert_eq!(status, 410, "a used link is refused");
    let again = client()
        .post(format!("{base}/ui/signin"))
        .form(&[("token", token_of(&path))])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(again.contains("used already"), "{again}");

    let late = link_for(&app, &bob(), "/ticket web").await;
    app.clock.advance(chrono::Duration::minutes(10));
    let r = client()
        .post(format!("{base}/ui/signin"))
        .form(&[("token", token_of(&late))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 410);
    assert!(r.text().await.unwrap().contains("expired"));

    let (status, _, _) = sign_in_with(&base, "/ui/signin/not-a-token").await;
    assert_eq!(status, 410);
    // A form that is not ours is answered with the page and what was wrong.
    let r = client()
        .post(format!("{base}/ui/signin"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("nothing=here")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(r.text().await.unwrap().contains("could not be read"));

    // A link naming a ticket opens it after signing in.
    let t = open(&app, &customer_actor(), "Refund for order 77").await;
    let to_ticket = link_for(&app, &bob(), &format!("/ticket web {t}")).await;
    let (_, location, _) = sign_in_with(&base, &to_ticket).await;
    assert_eq!(location, format!("/ui/tickets/{}", t.0));
}

fn customer_actor() -> Actor {
    Actor::user(customer())
}

async fn sessions_end_on_sign_out_and_forms_need_their_token(app: TestApp) {
    let (base, _stop) = serve_http(&app).await;
    let bill = open(&app, &customer_actor(), "Refund for order 77").await;
    let session = Session::start(&app, &base, &bob()).await;
    let (status, page) = session.get("/ui/tickets").await;
    assert_eq!(status, 200);
    assert!(page.contains("Refund for order 77"), "{page}");

    // Without a cookie: the page says how to sign in.
    let r = client()
        .get(format!("{base}/ui/tickets"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("/ticket web"));

    // A claim without the session's token changes nothing.
    let claim = format!("/ui/tickets/{}/claim", bill.0);
    for csrf in ["", "forged-token"] {
        let (status, _, body) = session.post(&claim, &[], Some(csrf)).await;
        assert_eq!(status, 403, "{body}");
    }
    assert_eq!(
        app.desk.store.ticket(bill).await.unwrap().unwrap().assignee,
        None
    );

    let (status, location, _) = session.post("/ui/signout", &[], None).await;
    assert_eq!((status, location.as_str()), (303, "/ui/"));
    let (status, _) = session.get("/ui/tickets").await;
    assert_eq!(status, 401, "the session ended in the database");
}

async fn people_see_what_chat_lets_them_see(app: TestApp) {
    let (base, _stop) = serve_http(&app).await;
    let bill = open(
        &app,
        &customer_actor(),
        "Refund for order 77, charged twice",
    )
    .await;
    let printer = open(&app, &customer_actor(), "Printer on floor 3 is jammed").await;
    let vpn = open(&app, &alice(), "VPN drops every hour department:it").await;
    app.ok(
        &bob(),
        &format!("/ticket note {bill} Called the bank, waiting on them"),
    )
    .await;

    // Bob works billing: its tickets, not IT's.
    let bob_session = Session::start(&app, &base, &bob()).await;
    let (_, page) = bob_session.get("/ui/tickets").await;
    assert!(page.contains("Refund for order 77"), "{page}");
    assert!(!page.contains("VPN drops"), "{page}");
    assert!(!page.contains("Printer on floor 3"), "{page}");
    let (status, page) = bob_session.get(&format!("/ui/tickets/{}", vpn.0)).await;
    assert_eq!(status, 403, "{page}");
    let (status, page) = bob_session.get(&format!("/ui/tickets/{}", bill.0)).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("Called the bank"),
        "members read notes: {page}"
    );
    assert!(page.contains("First response SLA") || page.contains("Status"));
    // Dashboards are for leads and admins; the at-risk list for staff.
    assert_eq!(bob_session.get("/ui/dashboard").await.0, 403);
    assert_eq!(bob_session.get("/ui/at-risk").await.0, 200);

    // Staff talk under the department's alert is the department's, as in chat.
    app.desk
        .store
        .add_thread_reply(&switchboard::core::ticket::ThreadReply {
            ticket: bill,
            channel: "slack:CBILLING".parse().unwrap(),
            message_id: "1772442300.000100".into(),
            author: bob().user,
            text: "Bank says the second charge is a hold".into(),
            at: app.clock.now(),
            edited_at: None,
            deleted_at: None,
        })
        .await
        .unwrap();
    let (_, page) = bob_session.get(&format!("/ui/tickets/{}", bill.0)).await;
    assert!(page.contains("second charge is a hold"), "{page}");

    // The customer sees their own tickets, not the notes on them.
    let customer_session = Session::start(&app, &base, &customer_actor()).await;
    let (_, page) = customer_session.get("/ui/tickets").await;
    assert!(page.contains("Refund for order 77") && page.contains("Printer on floor 3"));
    assert!(!page.contains("VPN drops"), "{page}");
    let (status, page) = customer_session
        .get(&format!("/ui/tickets/{}", bill.0))
        .await;
    assert_eq!(status, 200);
    assert!(!page.contains("Called the bank"), "{page}");
    assert!(!page.contains("second charge is a hold"), "{page}");
    assert!(!page.contains("/claim"), "no forms for a reporter: {page}");
    assert_eq!(customer_session.get("/ui/at-risk").await.0, 403);
    // A reporter posting a claim anyway is refused by the desk.
    let (status, _, body) = customer_session
        .post(&format!("/ui/tickets/{}/claim", bill.0), &[], None)
        .await;
    assert_eq!(status, 403, "{body}");

    // Carol leads billing: the dashboard, with the digest's figures and its charts.
    let carol_session = Session::start(&app, &base, &carol()).await;
    let (status, page) = carol_session.get("/ui/dashboard").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Opened") && page.contains("<svg"), "{page}");
    let (status, page) = carol_session
        .get("/ui/dashboard?department=billing&period=range&from=2026-02-01&to=2026-03-02")
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Dashboard: billing"), "{page}");
    let (status, page) = carol_session
        .get("/ui/dashboard?period=range&from=2026-03-02&to=2026-02-01")
        .await;
    assert_eq!(status, 400, "{page}");

    // Alice is an admin: everything, and the printer ticket found by a word of its body.
    let alice_session = Session::start(&app, &base, &alice()).await;
    let (_, page) = alice_session.get("/ui/tickets?q=jammed+printers").await;
    assert!(page.contains("Printer on floor 3"), "{page}");
    assert!(!page.contains("Refund for order 77"), "{page}");
    let (_, page) = alice_session.get("/ui/tickets?department=it").await;
    assert!(
        page.contains("VPN drops") && !page.contains("Printer"),
        "{page}"
    );
    let (_, page) = alice_session.get("/ui/tickets?priority=high").await;
    assert!(
        page.contains("Refund for order 77") && !page.contains("VPN"),
        "{page}"
    );
    let (_, page) = alice_session.get("/ui/tickets?tag=money").await;
    assert!(
        page.contains("Refund for order 77") && !page.contains("Printer"),
        "{page}"
    );
    let (_, page) = alice_session.get("/ui/tickets?origin=api").await;
    assert!(page.contains("No tickets match"), "{page}");
    let (status, location) = {
        let r = client()
            .get(format!("{base}/ui/tickets?q=T-{}", printer.0))
            .header("cookie", &alice_session.cookie)
            .send()
            .await
            .unwrap();
        (
            r.status().as_u16(),
            r.headers()["location"].to_str().unwrap().to_string(),
        )
    };
    assert_eq!(
        (status, location),
        (303, format!("/ui/tickets/{}", printer.0))
    );
    let (status, page) = alice_session.get("/ui/tickets?status=sleeping").await;
    assert_eq!(status, 400);
    assert!(page.contains("sleeping"), "{page}");
    for bad in ["from=yesterday", "to=%2B262143-12-31", "from=1969-12-31"] {
        let (status, page) = alice_session.get(&format!("/ui/tickets?{bad}")).await;
        assert_eq!(status, 400, "{bad}: {page}");
        assert!(page.contains("2026-03-01"), "says how to write it: {page}");
    }
    // "to" is a whole day: the day the tickets were opened finds them.
    let (_, page) = alice_session
        .get("/ui/tickets?status=any&from=2026-03-02&to=2026-03-02")
        .await;
    assert!(page.contains("Printer on floor 3"), "{page}");
    let (_, page) = alice_session
        .get("/ui/tickets?status=any&from=2026-03-03")
        .await;
    assert!(page.contains("No tickets match"), "{page}");
}

async fn pages_are_paged_newest_first(app: TestApp) {
    let (base, _stop) = serve_http(&app).await;
    for i in 0..55 {
        open(&app, &customer_actor(), &format!("Question number {i}")).await;
    }
    let s = Session::start(&app, &base, &alice()).await;
    let (_, first) = s.get("/ui/tickets").await;
    assert!(first.contains("Question number 54") && first.contains("Question number 5<"));
    assert!(!first.contains("Question number 4<"), "{first}");
    let older = first
        .split("href=\"")
        .find_map(|rest| {
            let href = rest.split('"').next()?;
            href.contains("before=").then(|| href.replace("&amp;", "&"))
        })
        .expect("an Older link");
    let (_, second) = s.get(&older).await;
    assert!(second.contains("Question number 4<") && second.contains("Question number 0<"));
    assert!(!second.contains("Question number 5<"), "{second}");
    assert!(!second.contains("id=\"older\""), "{second}");
}

async fn changes_from_a_page_go_through_the_desk(app: TestApp) {
    let (base, _stop) = serve_http(&app).await;
    let bill = open(&app, &customer_actor(), "Refund for order 77").await;
    let s = Session::start(&app, &base, &bob()).await;
    let path = format!("/ui/tickets/{}", bill.0);
    let (status, location, _) = s.post(&format!("{path}/claim"), &[], None).await;
    assert_eq!(status, 303);
    assert!(location.starts_with(&format!("{path}?done=")), "{location}");
    let t = app.desk.store.ticket(bill).await.unwrap().unwrap();
    assert_eq!(t.assignee, Some(bob().user));
    // The chat alert is edited, as for a button.
    let edits = app
        .desk
        .store
        .outbox(None, 0)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.outgoing.ticket == Some(bill) && r.outgoing.kind == OutKind::AlertUpdate)
        .count();
    assert!(edits >= 1, "no alert update queued");
    let (_, page) = s.get(&location).await;
    assert!(page.contains("You claimed"), "{page}");
    // The notice is only ever our own words.
    let (_, page) = s.get(&format!("{path}?done=Your+session+expired")).await;
    assert!(
        !page.contains("session expired") && !page.contains("id=\"done\""),
        "{page}"
    );

    let (status, _, _) = s
        .post(
            &format!("{path}/status"),
            &[("status", "waiting_on_customer")],
            None,
        )
        .await;
    assert_eq!(status, 303);
    let t = app.desk.store.ticket(bill).await.unwrap().unwrap();
    assert_eq!(t.status, Status::WaitingOnCustomer);
    let (status, _, body) = s
        .post(&format!("{path}/status"), &[("status", "asleep")], None)
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, _, body) = s
        .post(&format!("{path}/note"), &[("text", "  ")], None)
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, _, _) = s
        .post(
            &format!("{path}/note"),
            &[("text", "<b>bold</b> try")],
            None,
        )
        .await;
    assert_eq!(status, 303);
    let (_, page) = s.get(&path).await;
    assert!(
        page.contains("note: &#60;b&#62;bold&#60;/b&#62; try") && !page.contains("<b>bold"),
        "text is escaped: {page}"
    );
    // The desk's own rules answer: a resolved ticket cannot be claimed.
    app.ok(&bob(), &format!("/ticket status {bill} resolved"))
        .await;
    let (status, _, body) = s.post(&format!("{path}/claim"), &[], None).await;
    assert_eq!(status, 400, "{body}");
}

async fn show_and_alerts_link_to_the_page(app: TestApp) {
    let (base, _stop) = serve_http(&app).await;
    let bill = open(&app, &customer_actor(), "Refund for order 77").await;
    let shown = app.ok(&bob(), &format!("/ticket show {bill}")).await;
    assert!(
        shown.contains("http://127.0.0.1:8080/ui/signin/"),
        "a personal link: {shown}"
    );
    // The alert is the department's: its button answers each presser with their own link.
    let alert = app
        .desk
        .store
        .outbox(None, 0)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.outgoing.ticket == Some(bill) && r.outgoing.kind == OutKind::Alert)
        .expect("an alert");
    let button = alert
        .outgoing
        .message
        .buttons
        .iter()
        .find(|b| b.label == "Open in browser")
        .expect("an Open in browser button");
    assert_eq!(button.action_id, format!("web:{}", bill.0));
    let pressed = app
        .desk
        .press(&carol(), &button.action_id)
        .await
        .unwrap()
        .message
        .plain();
    assert!(pressed.contains("yours alone"), "{pressed}");
    let start = pressed.find("http://127.0.0.1:8080").unwrap();
    let path = pressed[start..]
        .split_whitespace()
        .next()
        .unwrap()
        .trim_start_matches("http://127.0.0.1:8080");
    let (status, location, _) = sign_in_with(&base, path).await;
    assert_eq!((status, location), (303, format!("/ui/tickets/{}", bill.0)));
}

crate::on_both_backends!(
    a_link_signs_in_once_within_ten_minutes,
    sessions_end_on_sign_out_and_forms_need_their_token,
    people_see_what_chat_lets_them_see,
    pages_are_paged_newest_first,
    changes_from_a_page_go_through_the_desk,
    show_and_alerts_link_to_the_page,
);
