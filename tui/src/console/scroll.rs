//! Scrolling a long list of lines (a log) that may be growing: either following its
//! end, or held at a line the reader scrolled to.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scroll {
    /// The first line shown when not following.
    pub top: usize,
    /// Show the last lines and move with new ones.
    pub follow: bool,
}

impl Default for Scroll {
    fn default() -> Self {
        Scroll {
            top: 0,
            follow: true,
        }
    }
}

impl Scroll {
    /// The first line to show of `len` lines in `height` rows.
    pub fn top(&self, len: usize, height: usize) -> usize {
        let last_page = len.saturating_sub(height);
        if self.follow {
            last_page
        } else {
            self.top.min(last_page)
        }
    }

    pub fn up(&mut self, n: usize, len: usize, height: usize) {
        self.top = self.top(len, height).saturating_sub(n);
        self.follow = false;
    }

    /// Scrolling down onto the last page follows again.
    pub fn down(&mut self, n: usize, len: usize, height: usize) {
        let top = self.top(len, height) + n;
        if top + height >= len {
            self.follow = true;
        } else {
            self.top = top;
        }
    }

    pub fn first(&mut self) {
        self.top = 0;
        self.follow = false;
    }

    pub fn last(&mut self) {
        self.follow = true;
    }

    /// Shows line `index` (a search hit) near the top.
    pub fn show(&mut self, index: usize, len: usize, height: usize) {
        let top = self.top(len, height);
        if index < top || index >= top + height {
            self.top = index.saturating_sub(2);
            self.follow = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrolling_up_holds_the_view_and_scrolling_back_down_follows_again() {
        let mut scroll = Scroll::default();
        assert_eq!(scroll.top(100, 10), 90, "follows the end");
        scroll.up(5, 100, 10);
        assert_eq!((scroll.top(100, 10), scroll.follow), (85, false));
        assert_eq!(scroll.top(200, 10), 85, "new lines do not move a held view");
        scroll.down(110, 200, 10);
        assert!(scroll.follow);
        scroll.first();
        scroll.show(50, 200, 10);
        assert_eq!(scroll.top(200, 10), 48);
        scroll.show(52, 200, 10);
        assert_eq!(
            scroll.top(200, 10),
            48,
            "a visible line does not move the view"
        );
        assert_eq!(
            Scroll::default().top(3, 10),
            0,
            "short logs start at the top"
        );
    }
}
