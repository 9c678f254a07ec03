//! A desk where work waits to be done in batches: whoever has work leaves it
//! ([`Desk::leave`]); a desk's workers each take whatever waits, up to a batch
//! ([`Desk::next_batch`]), into one transaction. An item alone goes at once, so a quiet
//! hub waits for nothing, and the busier it is, the fewer transactions an item costs.
//! The router's desk takes the orders a process committed for routing; the webhooks'
//! desk takes the orders platforms send.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{Mutex, mpsc, watch};

/// Work waiting to be taken in batches. Clones are the same desk.
pub struct Desk<T>(Arc<Inner<T>>);

struct Inner<T> {
    sender: mpsc::UnboundedSender<T>,
    receiver: Mutex<mpsc::UnboundedReceiver<T>>,
    waiting: AtomicUsize,
    /// Items waiting at most; past it, [`Desk::leave`] gives the item back.
    limit: usize,
    /// Items a batch takes at most.
    batch: usize,
}

/// An item a desk did not take, given back.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused<T> {
    /// As many items as may wait are waiting.
    Full(T),
    /// The desk has closed (the hub is stopping).
    Closed(T),
}

impl<T> Clone for Desk<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T> Desk<T> {
    /// A desk where `limit` items wait at most, taken `batch` at a time at most.
    pub fn new(limit: usize, batch: usize) -> Desk<T> {
        let (sender, receiver) = mpsc::unbounded_channel();
        Desk(Arc::new(Inner {
            sender,
            receiver: Mutex::new(receiver),
            waiting: AtomicUsize::new(0),
            limit,
            batch: batch.max(1),
        }))
    }

    /// Leaves `item` for the next batch; gives it back when `limit` items wait already,
    /// or once the desk has closed: then it is the caller's to do some other way.
    pub fn leave(&self, item: T) -> Result<(), Refused<T>> {
        let desk = &self.0;
        if desk.waiting.fetch_add(1, Ordering::AcqRel) >= desk.limit {
            desk.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(Refused::Full(item));
        }
        desk.sender
            .send(item)
            .map_err(|mpsc::error::SendError(item)| {
                desk.waiting.fetch_sub(1, Ordering::AcqRel);
                Refused::Closed(item)
            })
    }

    /// Everything waiting, up to a batch, in the order it came (waiting for the first);
    /// `None` once `stop` is set.
    pub async fn next_batch(&self, stop: &mut watch::Receiver<bool>) -> Option<Vec<T>> {
        let mut receiver = self.0.receiver.lock().await;
        if *stop.borrow() {
            return None;
        }
        let first = tokio::select! {
            biased;
            _ = stop.changed() => return None,
            first = receiver.recv() => first?,
        };
        let mut batch = vec![first];
        while batch.len() < self.0.batch {
            match receiver.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        self.0.waiting.fetch_sub(batch.len(), Ordering::AcqRel);
        Some(batch)
    }

    /// Closes the desk (what is left there from now on is given back) and returns what
    /// still waits, for the caller to answer: at the stop, none of it will be done here.
    pub async fn close(&self) -> Vec<T> {
        let mut receiver = self.0.receiver.lock().await;
        receiver.close();
        let mut left = Vec::new();
        while let Ok(item) = receiver.try_recv() {
            self.0.waiting.fetch_sub(1, Ordering::AcqRel);
            left.push(item);
        }
        left
    }

    /// Items waiting now.
    #[cfg(test)]
    pub fn waiting(&self) -> usize {
        self.0.waiting.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_desk_hands_out_what_waits_in_batches_and_gives_back_what_it_cannot_take() {
        let desk = Desk::new(10, 4);
        let (stop_tx, mut stop) = watch::channel(false);

        // What waits goes out together, up to a batch, in the order it came.
        for item in 0..6 {
            desk.leave(item).expect("room");
        }
        assert_eq!(desk.next_batch(&mut stop).await, Some(vec![0, 1, 2, 3]));
        assert_eq!(desk.next_batch(&mut stop).await, Some(vec![4, 5]));
        assert_eq!(desk.waiting(), 0);

        // Past the most that may wait, an item is given back.
        for item in 0..10 {
            desk.leave(item).expect("room");
        }
        assert_eq!(desk.leave(10), Err(Refused::Full(10)));
        assert_eq!(desk.waiting(), 10);

        // At the stop, no batch; closing returns what waits, and gives back what comes.
        stop_tx.send(true).expect("stop");
        assert_eq!(desk.next_batch(&mut stop).await, None);
        assert_eq!(desk.close().await, (0..10).collect::<Vec<_>>());
        assert_eq!(desk.waiting(), 0);
        assert_eq!(desk.leave(11), Err(Refused::Closed(11)));
        assert_eq!(desk.waiting(), 0);
    }
}
