//! Lists the daemon sends page by page, read whole.

use std::future::Future;

use cairn_proto::v1 as pb;
use cairn_proto::v1::snapshots_client::SnapshotsClient;
use tonic::Status;
use tonic::transport::Channel;

/// A response that is one page of a list.
pub trait Paged {
    type Item;
    /// Takes the page's items out of it.
    fn take_items(&mut self) -> Vec<Self::Item>;
    /// The token of the next page; empty at the end.
    fn next_page_token(&self) -> &str;
}

/// Every item of a list, in order, reading pages until the last or until `at_most`
/// items are in; and the pages themselves with their items taken out (for what else
/// they carry). `fetch` asks for the page a token names (the first with an empty one).
pub async fn all_pages<R: Paged, F: Future<Output = Result<R, Status>>>(
    at_most: usize,
    mut fetch: impl FnMut(String) -> F,
) -> Result<(Vec<R::Item>, Vec<R>), Status> {
    let mut items = Vec::new();
    let mut pages = Vec::new();
    let mut token = String::new();
    loop {
        let mut page = fetch(token).await?;
        items.append(&mut page.take_items());
        let next = page.next_page_token().to_owned();
        pages.push(page);
        if next.is_empty() || items.len() >= at_most {
            return Ok((items, pages));
        }
        token = next;
    }
}

macro_rules! paged {
    ($($response:ty => $items:ident: $item:ty),* $(,)?) => {$(
        impl Paged for $response {
            type Item = $item;
            fn take_items(&mut self) -> Vec<$item> {
                std::mem::take(&mut self.$items)
            }
            fn next_page_token(&self) -> &str {
                &self.next_page_token
            }
        }
    )*};
}

paged! {
    pb::ListJobsResponse => jobs: pb::Job,
    pb::ListRepositoriesResponse => repositories: pb::Repository,
    pb::ListSnapshotsResponse => snapshots: pb::Snapshot,
    pb::ListTreeResponse => entries: pb::TreeEntry,
    pb::ListDirectoryResponse => entries: pb::DirectoryEntry,
}

/// One directory of a snapshot with every page of it in `entries` (the CLI's `ls` and
/// the console's browser): the last page's answer, with all the entries.
pub async fn whole_directory(
    client: &SnapshotsClient<Channel>,
    repository: &str,
    snapshot: &str,
    path: &str,
) -> Result<pb::ListTreeResponse, Status> {
    let (entries, mut pages) = all_pages(usize::MAX, |page_token| {
        let mut client = client.clone();
        let request = pb::ListTreeRequest {
            repository: repository.to_owned(),
            snapshot: snapshot.to_owned(),
            path: path.to_owned(),
            page_size: 1000,
            page_token,
        };
        async move { Ok(client.list_tree(request).await?.into_inner()) }
    })
    .await?;
    let mut whole = pages.pop().unwrap_or_default();
    whole.entries = entries;
    Ok(whole)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(jobs: &[&str], next: &str) -> pb::ListJobsResponse {
        pb::ListJobsResponse {
            jobs: jobs
                .iter()
                .map(|name| pb::Job {
                    spec: Some(pb::JobSpec {
                        name: (*name).into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .collect(),
            next_page_token: next.into(),
            damaged: Vec::new(),
        }
    }

    fn names(jobs: &[pb::Job]) -> Vec<String> {
        jobs.iter()
            .map(|j| j.spec.clone().unwrap_or_default().name)
            .collect()
    }

    #[tokio::test]
    async fn every_page_is_read_in_order_with_the_token_of_the_one_before() {
        let mut pages = vec![
            page(&["a", "b"], "b"),
            page(&["c", "d"], "d"),
            page(&["e"], ""),
        ]
        .into_iter();
        let mut asked = Vec::new();
        let (all, read) = all_pages(usize::MAX, |token| {
            asked.push(token);
            std::future::ready(Ok(pages.next().expect("no page after the last")))
        })
        .await
        .unwrap();
        assert_eq!(names(&all), ["a", "b", "c", "d", "e"]);
        assert_eq!(asked, ["", "b", "d"]);
        assert_eq!(read.len(), 3);
        assert!(
            read.iter().all(|p| p.jobs.is_empty()),
            "items are taken out"
        );
    }

    #[tokio::test]
    async fn reading_stops_at_the_bound_and_at_an_error() {
        let mut pages = vec![
            page(&["a", "b"], "b"),
            page(&["c", "d"], "d"),
            page(&["e"], ""),
        ]
        .into_iter();
        let (all, _) = all_pages(3, |_| std::future::ready(Ok(pages.next().unwrap())))
            .await
            .unwrap();
        assert_eq!(
            names(&all),
            ["a", "b", "c", "d"],
            "whole pages, past the bound"
        );
        let failed = all_pages(10, |_| {
            std::future::ready(Err::<pb::ListJobsResponse, _>(Status::not_found("gone")))
        })
        .await;
        assert_eq!(failed.unwrap_err().code(), tonic::Code::NotFound);
    }
}
