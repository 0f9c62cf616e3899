//! The audit trail: time, who (uid and role), the call, its result (denials in red).

use cairn_proto::v1 as pb;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Span;
use ratatui::widgets::{Cell, Row, Table};

use crate::console::screen::AuditScreen;
use crate::console::state::State;
use crate::console::view::{block, clock, colored, mark_selected, note};

pub fn draw(frame: &mut Frame<'_>, state: &State, s: &AuditScreen, area: Rect) {
    let Some(_) = &s.entries else {
        note(frame, state, " audit trail ".into(), "loading...", area);
        return;
    };
    let visible = s.visible();
    let mut title = format!(" audit trail: {} entries", visible.len());
    if s.denied_only {
        title.push_str(", denied only");
    }
    if !s.filter.text.is_empty() {
        title.push_str(&format!(", /{}", s.filter.text));
    }
    title.push(' ');
    if visible.is_empty() {
        note(frame, state, title, "nothing recorded (that matches)", area);
        return;
    }
    let height = area.height.saturating_sub(3) as usize;
    let top = s.selected.saturating_sub(height.saturating_sub(1));
    let rows = visible
        .iter()
        .enumerate()
        .skip(top)
        .take(height)
        .map(|(i, e)| {
            let call = e.rpc.trim_start_matches("/cairn.v1.").to_owned();
            let result = if e.result == "ok" {
                Span::raw("ok")
            } else if e.count > 1 {
                Span::styled(
                    format!("{} ({} times)", e.result, e.count),
                    colored(state.color, Color::Red),
                )
            } else {
                Span::styled(e.result.clone(), colored(state.color, Color::Red))
            };
            let row = Row::new(vec![
                Cell::from(clock(state, e.time.as_ref())),
                Cell::from(format!(
                    "{} ({})",
                    e.uid,
                    crate::console::role_name(pb::Role::try_from(e.role).unwrap_or_default())
                )),
                Cell::from(call),
                Cell::from(result),
                Cell::from(e.arguments.clone()),
            ]);
            mark_selected(row, i == s.selected, state.color)
        });
    frame.render_widget(
        Table::new(
            rows,
            [
                Constraint::Length(16),
                Constraint::Length(16),
                Constraint::Length(28),
                Constraint::Fill(1),
                Constraint::Fill(2),
            ],
        )
        .header(
            Row::new(["TIME", "WHO", "CALL", "RESULT", "ARGUMENTS"])
                .style(Style::new().add_modifier(Modifier::BOLD)),
        )
        .block(block(state, title)),
        area,
    );
}

#[cfg(test)]
mod tests {
    use cairn_proto::v1 as pb;

    use crate::console::Role;
    use crate::console::action::{Action, AuditReply, Intent, Reply, update};
    use crate::console::view::fixtures::*;

    #[test]
    fn the_audit_trail_with_a_denial_at_120x40_and_a_viewer_turned_away() {
        let mut viewer = state(Role::Viewer, Vec::new());
        update(&mut viewer, Action::Key(Intent::OpenAudit));
        assert!(matches!(
            viewer.screen(),
            crate::console::screen::Screen::Dashboard(_)
        ));
        assert!(
            viewer
                .message
                .as_ref()
                .is_some_and(|m| m.text.contains("the audit trail needs the admin role"))
        );

        let mut state = state(Role::Admin, Vec::new());
        update(&mut state, Action::Key(Intent::OpenAudit));
        let entry = |seq: u64, uid: u32, role: pb::Role, rpc: &str, args: &str, result: &str| {
            pb::AuditEntry {
                seq,
                time: at(600 - seq as i64 * 60),
                uid,
                role: role as i32,
                rpc: rpc.into(),
                arguments: args.into(),
                result: result.into(),
                count: 1,
                hash: String::new(),
            }
        };
        update(
            &mut state,
            Action::Reply(Reply::Audit(AuditReply::AuditLoaded(vec![
                entry(
                    3,
                    1001,
                    pb::Role::Viewer,
                    "/cairn.v1.Jobs/RunJob",
                    r#"{"name":"web"}"#,
                    "PermissionDenied: RunJob needs the operator role; uid 1001 has viewer",
                ),
                entry(
                    2,
                    0,
                    pb::Role::Admin,
                    "/cairn.v1.Jobs/CreateJob",
                    r#"{"name":"web","repository":"main"}"#,
                    "ok",
                ),
                entry(
                    1,
                    0,
                    pb::Role::Admin,
                    "/cairn.v1.Repositories/CreateRepository",
                    r#"{"name":"main","passphrase":"<redacted>"}"#,
                    "ok",
                ),
            ]))),
        );
        insta::assert_snapshot!("audit_120x40", render(&state, 120, 40));
        insta::assert_snapshot!("audit_80x24", render(&state, 80, 24));
        update(&mut state, Action::Key(Intent::StartFilter));
        for c in "denied 1001".chars() {
            update(&mut state, Action::Key(Intent::FilterChar(c)));
        }
        let screen = render(&state, 80, 24).to_string();
        assert!(screen.contains("audit trail: 1 entries"), "{screen}");
    }
}
