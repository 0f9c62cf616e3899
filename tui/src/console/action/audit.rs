//! The audit screen (admin): open it, move, filter, only denied calls, details.

use super::{AuditReply, Effect, Intent, back, move_in, needs};
use crate::console::Role;
use crate::console::screen::{AuditScreen, Screen};
use crate::console::state::{Message, State};

pub fn open(state: &mut State) -> Vec<Effect> {
    if state.role() < Role::Admin {
        state.message = Some(needs("the audit trail", Role::Admin, state.role()));
        return Vec::new();
    }
    if !matches!(state.screen(), Screen::Audit(_)) {
        state.screens.push(Screen::Audit(AuditScreen::default()));
    }
    vec![Effect::LoadAudit { denied_only: false }]
}

pub fn key(state: &mut State, intent: Intent) -> Vec<Effect> {
    let Some(Screen::Audit(s)) = state.screens.last_mut() else {
        return Vec::new();
    };
    if s.filter.editing {
        if s.filter.edit(&intent) {
            s.selected = 0;
        }
        return Vec::new();
    }
    let len = s.visible().len();
    match intent {
        a if a.moves() => move_in(&mut s.selected, len, &a),
        Intent::StartFilter => s.filter.editing = true,
        Intent::ToggleDenied => {
            s.denied_only = !s.denied_only;
            s.entries = None;
            s.selected = 0;
            return vec![Effect::LoadAudit {
                denied_only: s.denied_only,
            }];
        }
        Intent::Open => {
            if let Some(e) = s.visible().get(s.selected) {
                let text = format!(
                    "uid {} ({}) called {}\narguments: {}\nresult: {}",
                    e.uid,
                    crate::console::role_name(
                        cairn_proto::v1::Role::try_from(e.role).unwrap_or_default()
                    ),
                    e.rpc,
                    e.arguments,
                    e.result
                );
                state.message = Some(Message {
                    title: format!("audit entry {}", e.seq),
                    text,
                });
            }
        }
        Intent::Back if s.filter.is_active() => s.filter.clear(),
        Intent::Back => return back(state),
        _ => {}
    }
    Vec::new()
}

/// The audit trail's entries, to every audit screen open.
pub fn loaded(state: &mut State, reply: AuditReply) -> Vec<Effect> {
    match reply {
        AuditReply::AuditLoaded(entries) => {
            for screen in &mut state.screens {
                if let Screen::Audit(s) = screen {
                    s.selected = s.selected.min(entries.len().saturating_sub(1));
                    s.entries = Some(entries.clone());
                }
            }
            Vec::new()
        }
    }
}
