//! Operator steps the operations tests share.
//!
//! Clicking: WebDriver only scrolls an element it considers out of view, and one at the top
//! edge of the window counts as in view although the sticky header covers it; this centres
//! the element first, as a person would scroll to it.

use fantoccini::elements::Element;

use crate::browser::{Browser, Node};

/// Logs in as `user` and opens `hash` (e.g. `#/incidents`) once the login page is done.
pub async fn login_and_open(browser: &Browser, node: &Node, user: &str, hash: &str) {
    browser.login(node, user).await;
    browser.until_text("#whoami", user).await;
    browser.open(node, hash).await;
}

/// Scrolls the first element matching `css` to the middle of the window and clicks it.
pub async fn click(browser: &Browser, css: &str) -> Element {
    let element = browser.element(css).await;
    let arg = serde_json::to_value(&element).expect("element reference");
    browser
        .client
        .execute("arguments[0].scrollIntoView({block: 'center'});", vec![arg])
        .await
        .expect("scroll");
    element
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
    element
}
