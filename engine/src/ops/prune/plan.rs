//! Deciding what a prune deletes and what it repacks (FORMAT.md, "Prune", step 5),
//! from the index and the set of used blobs alone.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use super::packs::PackTable;
use crate::id::{BlobId, PackId};
use crate::pack::BlobEntry;

/// What the plan is asked to reach.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Unused bytes tolerated in partly used packs, as a percentage of used bytes.
    pub max_unused_percent: f64,
    /// At most this many bytes of packs rewritten in one run.
    pub max_repack: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct PlanFigures {
    pub packs: u64,
    pub stored_bytes: u64,
    /// Stored bytes of the kept copies' packs, pro rata (what must stay).
    pub used_bytes: u64,
    pub unused_bytes: u64,
    pub unused_packs: u64,
    pub unused_pack_bytes: u64,
    pub repack_packs: u64,
    pub repack_bytes: u64,
    pub repack_blobs: u64,
    /// Unused bytes estimated to remain in partly used packs after the prune.
    pub unused_bytes_after: u64,
    /// Used blobs with no copy in a pack that exists: lost already (`check` says where).
    pub used_blobs_missing: u64,
    /// Packs left alone because a condemn record waiting to be swept names them.
    pub condemned_packs: u64,
}

#[derive(Debug, Clone, Default)]
pub struct PrunePlan {
    pub unused: Vec<PackId>,
    /// Packs to rewrite, each with the blobs to copy out of it.
    pub repack: Vec<(PackId, Vec<BlobEntry>)>,
    pub figures: PlanFigures,
}

impl PrunePlan {
    /// Every pack the plan takes away (condemned once repacked).
    pub fn condemned(&self) -> Vec<PackId> {
        let mut packs = self.unused.clone();
        packs.extend(self.repack.iter().map(|(id, _)| *id));
        packs
    }
}

/// Plans a prune. Each used blob keeps one copy, in the available pack (existing, not
/// condemned) with the most used bytes; every other copy is unused.
pub fn plan(
    table: &PackTable,
    used: &HashSet<BlobId>,
    condemned: &HashSet<PackId>,
    limits: Limits,
) -> PrunePlan {
    let available = |id: &PackId, size: Option<u64>| size.is_some() && !condemned.contains(id);
    let used_bytes_of = |blobs: &[BlobEntry]| -> u64 {
        blobs
            .iter()
            .filter(|b| used.contains(&b.id))
            .map(|b| u64::from(b.stored_len))
            .sum()
    };
    // Where each used blob keeps its copy.
    let mut weight: HashMap<PackId, u64> = HashMap::new();
    let mut kept_in: HashMap<BlobId, PackId> = HashMap::new();
    for (id, info) in &table.packs {
        if available(id, info.size) {
            weight.insert(*id, used_bytes_of(&info.blobs));
        }
    }
    for (id, info) in &table.packs {
        let Some(&mine) = weight.get(id) else {
            continue;
        };
        for blob in info.blobs.iter().filter(|b| used.contains(&b.id)) {
            kept_in
                .entry(blob.id)
                .and_modify(|current| {
                    if (mine, *id) > (weight[current], *current) {
                        *current = *id;
                    }
                })
                .or_insert(*id);
        }
    }
    // Used blobs that wait in a condemned pack are not lost: its sweep rescues them.
    let waiting: HashSet<BlobId> = table
        .packs
        .iter()
        .filter(|(id, info)| info.size.is_some() && condemned.contains(id))
        .flat_map(|(_, info)| info.blobs.iter().map(|b| b.id))
        .filter(|b| used.contains(b))
        .collect();
    let mut figures = PlanFigures {
        packs: table.packs.len() as u64,
        stored_bytes: table.stored_bytes(),
        used_blobs_missing: used
            .iter()
            .filter(|b| !kept_in.contains_key(b) && !waiting.contains(b))
            .count() as u64,
        ..PlanFigures::default()
    };
    let mut result = PrunePlan::default();
    // (unused share, unused bytes, size, id, kept blobs) of partly used packs.
    let mut partly: Vec<(f64, u64, u64, PackId, Vec<BlobEntry>)> = Vec::new();
    for (id, info) in &table.packs {
        let Some(size) = info.size else {
            continue;
        };
        if condemned.contains(id) {
            figures.condemned_packs += 1;
            continue;
        }
        let mut seen = HashSet::new();
        let kept: Vec<BlobEntry> = info
            .blobs
            .iter()
            .filter(|b| kept_in.get(&b.id) == Some(id) && seen.insert(b.id))
            .copied()
            .collect();
        if kept.is_empty() {
            result.unused.push(*id);
            figures.unused_packs += 1;
            figures.unused_pack_bytes += size;
            figures.unused_bytes += size;
            continue;
        }
        let total = info.blob_bytes().max(1);
        let kept_bytes: u64 = kept.iter().map(|b| u64::from(b.stored_len)).sum();
        let used = (u128::from(size) * u128::from(kept_bytes) / u128::from(total)) as u64;
        let unused = size.saturating_sub(used);
        figures.used_bytes += used;
        figures.unused_bytes += unused;
        if unused > 0 {
            partly.push((unused as f64 / size as f64, unused, size, *id, kept));
        }
    }
    // The most wasteful first; ties by id, so a plan is the same every time.
    partly.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.3.cmp(&b.3)));
    let tolerated = (figures.used_bytes as f64 * limits.max_unused_percent / 100.0) as u64;
    let mut remaining: u64 = partly.iter().map(|p| p.1).sum();
    for (_, unused, size, id, kept) in partly {
        if remaining <= tolerated {
            break;
        }
        if limits
            .max_repack
            .is_some_and(|max| figures.repack_bytes + size > max)
        {
            break;
        }
        remaining -= unused;
        figures.repack_packs += 1;
        figures.repack_bytes += size;
        figures.repack_blobs += kept.len() as u64;
        result.repack.push((id, kept));
    }
    figures.unused_bytes_after = remaining;
    result.unused.sort_unstable();
    skip_copies_that_stay(table, &mut result, &mut figures, &available);
    result.figures = figures;
    result
}

/// A kept copy in a pack being rewritten is not copied when a pack that stays as it
/// is holds the blob too: that copy serves. (Copied, the new pack would hold a
/// duplicate of a pack with more used bytes, lose the blob to it in the next plan and
/// be found unused by the very next prune; this happens after an interrupted repack.)
fn skip_copies_that_stay(
    table: &PackTable,
    result: &mut PrunePlan,
    figures: &mut PlanFigures,
    available: &dyn Fn(&PackId, Option<u64>) -> bool,
) {
    if result.repack.is_empty() {
        return;
    }
    let rewritten: HashSet<BlobId> = result
        .repack
        .iter()
        .flat_map(|(_, kept)| kept.iter().map(|b| b.id))
        .collect();
    let leaving: HashSet<PackId> = result.condemned().into_iter().collect();
    let staying: HashSet<BlobId> = table
        .packs
        .iter()
        .filter(|(id, info)| available(id, info.size) && !leaving.contains(id))
        .flat_map(|(_, info)| info.blobs.iter().map(|b| b.id))
        .filter(|b| rewritten.contains(b))
        .collect();
    for (_, kept) in &mut result.repack {
        let before = kept.len();
        kept.retain(|b| !staying.contains(&b.id));
        figures.repack_blobs -= (before - kept.len()) as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::BlobKind;
    use crate::id::IndexId;
    use crate::index::file::PackBlobs;

    fn blob(n: u8, len: u32) -> BlobEntry {
        BlobEntry {
            id: BlobId([n; 32]),
            kind: BlobKind::Data,
            compressed: false,
            offset: 8,
            stored_len: len,
            raw_len: len,
        }
    }

    fn table(packs: &[(u8, Vec<BlobEntry>)]) -> PackTable {
        let mut table = PackTable::default();
        let sizes = packs
            .iter()
            .map(|(n, blobs)| {
                (
                    PackId([*n; 32]),
                    blobs.iter().map(|b| u64::from(b.stored_len)).sum(),
                )
            })
            .collect();
        let listed = packs
            .iter()
            .map(|(n, blobs)| PackBlobs {
                pack: PackId([*n; 32]),
                blobs: blobs.clone(),
            })
            .collect();
        table.add_file(IndexId([0; 32]), listed, &sizes);
        table
    }

    fn limits(percent: f64) -> Limits {
        Limits {
            max_unused_percent: percent,
            max_repack: None,
        }
    }

    #[test]
    fn unused_packs_go_and_the_most_wasteful_partly_used_ones_are_repacked() {
        let t = table(&[
            (1, vec![blob(1, 100), blob(2, 100)]), // all used
            (2, vec![blob(3, 100), blob(4, 100)]), // unused
            (3, vec![blob(5, 10), blob(6, 190)]),  // 95 % unused
            (4, vec![blob(7, 150), blob(8, 50)]),  // 25 % unused
        ]);
        let used: HashSet<BlobId> = [1, 2, 5, 7].map(|n| BlobId([n; 32])).into();
        let p = plan(&t, &used, &HashSet::new(), limits(10.0));
        assert_eq!(p.unused, [PackId([2; 32])]);
        // Used: 200 + 10 + 150 = 360; 10 % tolerates 36. Left: 190 + 50 = 240 > 36 →
        // pack 3 (95 %) goes, 50 > 36 → pack 4 too.
        let repacked: Vec<PackId> = p.repack.iter().map(|(id, _)| *id).collect();
        assert_eq!(repacked, [PackId([3; 32]), PackId([4; 32])]);
        assert_eq!(p.repack[0].1, [blob(5, 10)], "only the used blob is copied");
        assert_eq!(p.figures.unused_bytes_after, 0);
        // With a generous tolerance only the worst is repacked.
        let p = plan(&t, &used, &HashSet::new(), limits(20.0));
        assert_eq!(p.repack.len(), 1);
        assert_eq!(p.figures.unused_bytes_after, 50);
        // A repack budget smaller than a pack repacks nothing.
        let p = plan(
            &t,
            &used,
            &HashSet::new(),
            Limits {
                max_repack: Some(100),
                ..limits(0.0)
            },
        );
        assert!(p.repack.is_empty() && p.unused.len() == 1);
    }

    #[test]
    fn a_blob_a_staying_pack_also_holds_is_not_copied_out_of_a_repacked_one() {
        // As an interrupted repack leaves them: pack 1 and pack 3 are its output
        // (copies of blobs of pack 2 among others), pack 2 the pack it was rewriting.
        let t = table(&[
            (1, vec![blob(1, 10), blob(2, 10)]),
            (2, vec![blob(2, 10), blob(3, 30), blob(9, 50)]),
            (3, vec![blob(3, 30), blob(4, 20)]),
        ]);
        let used: HashSet<BlobId> = [1, 2, 3, 4].map(|n| BlobId([n; 32])).into();
        let p = plan(&t, &used, &HashSet::new(), limits(50.0));
        // Blob 2 is kept in pack 2 (40 used bytes against pack 1's 20), which is
        // mostly garbage and repacked; pack 1 stays (it keeps blob 1) and holds blob 2
        // too, so nothing is copied and no new pack duplicates pack 1.
        let repacked: Vec<PackId> = p.repack.iter().map(|(id, _)| *id).collect();
        assert_eq!(repacked, [PackId([2; 32])]);
        assert!(p.repack[0].1.is_empty(), "{:?}", p.repack[0].1);
        assert_eq!(p.figures.repack_blobs, 0);
    }

    #[test]
    fn a_duplicate_keeps_the_copy_in_the_fuller_pack_and_condemned_packs_are_left_alone() {
        let t = table(&[
            (1, vec![blob(1, 100), blob(2, 100)]),
            (2, vec![blob(1, 100), blob(9, 900)]), // a duplicate of 1 beside garbage
            (3, vec![blob(3, 100)]),
        ]);
        let used: HashSet<BlobId> = [1, 2, 3].map(|n| BlobId([n; 32])).into();
        let condemned: HashSet<PackId> = [PackId([3; 32])].into();
        let p = plan(&t, &used, &condemned, limits(10.0));
        assert_eq!(
            p.unused,
            [PackId([2; 32])],
            "its only used blob is kept in pack 1"
        );
        assert!(p.repack.is_empty());
        assert_eq!(p.figures.condemned_packs, 1);
        assert_eq!(
            p.figures.used_blobs_missing, 0,
            "blob 3 waits in a condemned pack"
        );
    }
}
