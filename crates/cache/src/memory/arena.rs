//! The entries of one shard: an arena of nodes, each linked by index into one of a few
//! recency lists, and one hash table from keys to nodes.
//!
//! Moving an entry to the front of its list, or to another list, relinks it: no lookup
//! and no allocation. A freed node's slot is reused by the next insert, so a full cache
//! that evicts one entry per insert does not allocate. A node is only its key, value
//! and deadline (no stored hashes), what a read looks at, so that it spans as few cache
//! lines as it can.
//!
//! The links live in a vector of their own, beside the nodes: moving entries about
//! writes only links, so the nodes are written by inserts and removals only (and a
//! node's mark, once, by a read), and a reader on another core does not lose them from
//! its cache each time the shard's recency is updated.

use std::borrow::Borrow;
use std::hash::{BuildHasher, Hash};

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use hashbrown::{DefaultHashBuilder, HashTable, hash_table};
use parking_lot::{Mutex, MutexGuard};

use super::entry::{Entry, NEVER, Now};

/// No node: the end of a list.
const NIL: u32 = u32::MAX;

/// How many lists an arena keeps (W-TinyLFU's window, probation and protected).
pub(crate) const LISTS: usize = 3;

/// A node's marks, the top two bits of its deadline word (deadlines are at most
/// [`NEVER`], below them): read by its batch's owner since it was last linked
/// ([`STAMPED`], its stamp says when), and read in a batch several threads read
/// ([`SEEN`], no one knows when).
pub(crate) const STAMPED: u64 = 1 << 63;
pub(crate) const SEEN: u64 = 1 << 62;
const MARKS: u64 = STAMPED | SEEN;

/// A held entry: its key and value, its weight, its deadline with the node's marks,
/// and plain LRU's stamp.
#[derive(Debug)]
pub(crate) struct Node<K, V> {
    pub(crate) key: K,
    pub(crate) value: V,
    /// The weight plus one (saturating), so that the `Option` around the node takes its
    /// tag from this niche rather than adding a word.
    weight: NonZeroUsize,
    /// The deadline ([`Entry::expires`]) and, in [`MARKS`], how the node was read since
    /// it was last linked (plain LRU's, see `lru_store`; set under a shared lock,
    /// each written only if it is not set yet). (W-TinyLFU sets neither; a move to
    /// the front of a list clears both.)
    deadline: AtomicU64,
    /// Plain LRU's: when the node was last linked, or read by its batch's owner, on its
    /// shard's read clock (see `lru_store`). Written under a shared lock by such reads.
    stamp: AtomicU64,
}

impl<K, V> Node<K, V> {
    fn new(key: K, entry: Entry<V>) -> Self {
        let Entry { value, weight, expires } = entry;
        // A deadline past NEVER (146 years on the clock) is never.
        Self {
            key,
            value,
            weight: encode_weight(weight),
            deadline: AtomicU64::new(expires.min(NEVER)),
            stamp: AtomicU64::new(0),
        }
    }

    /// The entry's weight.
    #[inline]
    pub(crate) fn weight(&self) -> usize {
        self.weight.get() - 1
    }

    /// The deadline, without the marks.
    #[inline]
    fn expires(&self) -> u64 {
        self.deadline.load(Relaxed) & !MARKS
    }

    /// Reads the clock only for an entry with a TTL.
    #[inline]
    pub(crate) fn is_expired(&self, now: &Now<'_>) -> bool {
        super::entry::is_expired(self.expires(), now)
    }

    /// When the node was last linked or read (see [`stamp`](Self::stamp)).
    #[inline]
    pub(crate) fn stamp(&self) -> u64 {
        self.stamp.load(Relaxed)
    }

    /// A read by its batch's owner (see `reads`) under a shared lock: if the entry is
    /// live at `now`, stamps it with the stamp `stamp` gives and sets [`STAMPED`] (one
    /// load of the deadline word for both); whether it was live.
    #[inline]
    pub(crate) fn read_at(&self, now: &Now<'_>, stamp: impl FnOnce() -> u64) -> bool {
        if !self.live_marked(now, STAMPED) {
            return false;
        }
        self.stamp.store(stamp(), Relaxed);
        true
    }

    /// A read in a batch several threads read, under a shared lock: if the entry is
    /// live at `now`, sets [`SEEN`], a write only the first time; whether it was live.
    #[inline]
    pub(crate) fn read_seen(&self, now: &Now<'_>) -> bool {
        self.live_marked(now, SEEN)
    }

    /// Whether the entry is live at `now`, and if it is, sets `mark` unless it is set.
    /// (Every reader writes the same word: the deadline changes under the exclusive lock
    /// only.)
    #[inline]
    fn live_marked(&self, now: &Now<'_>, mark: u64) -> bool {
        let d = self.deadline.load(Relaxed);
        if super::entry::is_expired(d & !MARKS, now) {
            return false;
        }
        if d & mark == 0 {
            self.deadline.store(d | mark, Relaxed);
        }
        true
    }

    /// Clears the marks through a shared reference, writing only if one is set. (Marks
    /// are set under a shared hold of the arena and cleared only with the order held;
    /// the deadline itself changes only with the arena held exclusively.)
    #[inline]
    fn clear_marks(&self) {
        let d = self.deadline.load(Relaxed);
        if d & MARKS != 0 {
            self.deadline.store(d & !MARKS, Relaxed);
        }
    }

    /// The node's marks ([`STAMPED`], [`SEEN`]), cleared (writing only if one was set).
    #[inline]
    fn take_marks(&mut self) -> u64 {
        let d = self.deadline.get_mut();
        let marks = *d & MARKS;
        *d &= !MARKS;
        marks
    }

    fn into_parts(self) -> (K, Entry<V>) {
        let (weight, expires) = (self.weight(), self.expires());
        (self.key, Entry { value: self.value, weight, expires })
    }
}

/// The table's hash of the key of the node an index names, for the table to rehash its
/// indices when it grows.
fn rehash<'a, K: Hash, V>(
    nodes: &'a [Option<Node<K, V>>],
    hasher: &'a DefaultHashBuilder,
) -> impl Fn(&u32) -> u64 + 'a {
    move |&j| nodes.get(j as usize).and_then(Option::as_ref).map_or(0, |n| hasher.hash_one(&n.key))
}

/// A weight as a node keeps it (see [`Node::weight`]).
fn encode_weight(weight: usize) -> NonZeroUsize {
    NonZeroUsize::new(weight.saturating_add(1)).unwrap_or(NonZeroUsize::MAX)
}

/// Where a node sits in the lists.
#[derive(Debug, Clone, Copy)]
struct Link {
    /// Toward the most recent end of the list.
    prev: u32,
    /// Toward the least recent end.
    next: u32,
    /// The list this node is in (or was last in, while out of every list).
    list: u32,
}

impl Link {
    const OUT: Self = Self { prev: NIL, next: NIL, list: 0 };
}

/// One recency list (`head` most recent) and the weight it holds.
#[derive(Debug, Clone, Copy)]
struct List {
    head: u32,
    tail: u32,
    used: usize,
}

impl List {
    const EMPTY: Self = Self { head: NIL, tail: NIL, used: 0 };
}

/// What a recency update writes: the lists, every node's links, and `P`, the policy's
/// own state (W-TinyLFU's sketch and window simulations; nothing for plain LRU). The lists
/// come first (`repr(C)`): a hit writes a list head.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct Order<P> {
    lists: [List; LISTS],
    /// `links[i]` places `nodes[i]` in the lists (a free node's is out of every list).
    links: Vec<Link>,
    policy: P,
}

impl<P> Order<P> {
    /// Weight held by all lists (a plain loop: the iterator's fold was not inlined, at
    /// 172 instructions per W-TinyLFU insert).
    #[inline]
    fn used_total(&self) -> usize {
        let mut total = 0;
        for l in &self.lists {
            total += l.used;
        }
        total
    }
}

/// The nodes and the table, and the order under a lock of its own.
///
/// Whoever holds the arena exclusively reaches the order without locking
/// ([`recency`](Self::recency)). Under a shared hold, one reader at a time can take the
/// order's lock ([`try_recency`](Self::try_recency)) and replay reads into it while
/// other readers go on finding nodes: replaying moves entries between lists and counts
/// them in the policy, but never adds, removes or rewrites a node, so the nodes and the
/// table stay readable.
///
/// What a read looks at comes first (`repr(C)`): the table and the nodes' vector, so
/// that with the shard's lock and read line before them they take as few cache lines
/// as they can; the order, which replays write, after.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct Arena<K, V, P = ()> {
    /// Key → node index.
    table: HashTable<u32>,
    nodes: Vec<Option<Node<K, V>>>,
    order: Mutex<Order<P>>,
    table_hasher: DefaultHashBuilder,
    /// Indices of `None` nodes, reused first.
    free: Vec<u32>,
}

/// The nodes, to read, and the order, to write: what moves entries between lists.
pub(crate) struct Recency<'a, K, V, P> {
    nodes: &'a [Option<Node<K, V>>],
    order: &'a mut Order<P>,
}

/// The order's lock, taken under a shared hold of the arena
/// ([`Arena::try_recency`]).
pub(crate) struct HeldOrder<'a, K, V, P> {
    nodes: &'a [Option<Node<K, V>>],
    order: MutexGuard<'a, Order<P>>,
}

impl<K, V, P> HeldOrder<'_, K, V, P> {
    #[inline]
    pub(crate) fn recency(&mut self) -> Recency<'_, K, V, P> {
        Recency { nodes: self.nodes, order: &mut self.order }
    }
}

impl<'a, K, V, P> Recency<'a, K, V, P> {
    /// The policy's own state.
    #[inline]
    pub(crate) fn policy(&mut self) -> &mut P {
        &mut self.order.policy
    }

    /// Node `i`, borrowed from the arena rather than from this view.
    #[inline]
    pub(crate) fn node(&self, i: u32) -> Option<&'a Node<K, V>> {
        let nodes: &'a [Option<Node<K, V>>] = self.nodes;
        nodes.get(i as usize).and_then(Option::as_ref)
    }

    /// Weight held by `list`.
    #[inline]
    pub(crate) fn used(&self, list: usize) -> usize {
        self.order.lists.get(list).map_or(0, |l| l.used)
    }

    /// Weight held by all lists.
    #[inline]
    pub(crate) fn used_total(&self) -> usize {
        self.order.used_total()
    }

    /// The list node `i` is in (or was last in).
    pub(crate) fn list_of(&self, i: u32) -> Option<usize> {
        self.node(i)?;
        self.order.links.get(i as usize).map(|l| l.list as usize)
    }

    /// The least recent node of `list` and its weight.
    pub(crate) fn lru_of(&self, list: usize) -> Option<(u32, usize)> {
        let tail = self.order.lists.get(list)?.tail;
        self.node(tail).map(|n| (tail, n.weight()))
    }

    #[inline]
    fn link(&mut self, i: u32) -> Option<&mut Link> {
        self.order.links.get_mut(i as usize)
    }

    /// Takes node `i` out of its list (it stays in the table and the arena).
    pub(crate) fn unlink(&mut self, i: u32) {
        let Some(weight) = self.node(i).map(Node::weight) else { return };
        let Some(&Link { prev, next, list }) = self.order.links.get(i as usize) else { return };
        let list = list as usize;
        let Some(l) = self.order.lists.get(list).copied() else { return };
        // A node out of every list has no neighbours and is not its list's head.
        if prev == NIL && l.head != i {
            return;
        }
        match self.link(prev) {
            Some(p) => p.next = next,
            None => self.order.lists[list].head = next,
        }
        match self.link(next) {
            Some(nx) => nx.prev = prev,
            None => self.order.lists[list].tail = prev,
        }
        self.order.lists[list].used -= weight;
        if let Some(me) = self.link(i) {
            me.prev = NIL;
            me.next = NIL;
        }
    }

    /// Links node `i` (out of every list) as the most recent of `list`.
    pub(crate) fn link_front(&mut self, i: u32, list: usize) {
        let Some(head) = self.order.lists.get(list).map(|l| l.head) else { return };
        let Some(weight) = self.node(i).map(Node::weight) else { return };
        let Some(me) = self.link(i) else { return };
        *me = Link { prev: NIL, next: head, list: list as u32 };
        match self.link(head) {
            Some(h) => h.prev = i,
            None => self.order.lists[list].tail = i,
        }
        let l = &mut self.order.lists[list];
        l.head = i;
        l.used += weight;
    }

    /// Makes node `i` the most recent of its own list (a hit): relinks it without
    /// touching the list's weight or the entry, and clears its mark. A node out of
    /// every list (a free one too) stays out.
    #[inline]
    pub(crate) fn touch(&mut self, i: u32) {
        if let Some(n) = self.node(i) {
            n.clear_marks();
        }
        let Some(&Link { prev, next, list, .. }) = self.order.links.get(i as usize) else { return };
        if prev == NIL {
            // Already the most recent (or out of every list).
            return;
        }
        let Some(l) = self.order.lists.get_mut(list as usize) else { return };
        let head = l.head;
        l.head = i;
        if next == NIL {
            l.tail = prev;
        }
        if let Some(p) = self.link(prev) {
            p.next = next;
        }
        if let Some(nx) = self.link(next) {
            nx.prev = prev;
        }
        if let Some(h) = self.link(head) {
            h.prev = i;
        }
        if let Some(me) = self.link(i) {
            me.prev = NIL;
            me.next = head;
        }
    }

    /// Makes node `i` the most recent of `list` (its own or another).
    pub(crate) fn move_front(&mut self, i: u32, list: usize) {
        self.unlink(i);
        self.link_front(i, list);
    }
}

impl<K: Hash + Eq, V, P: Default> Arena<K, V, P> {
    #[cfg(test)]
    pub(crate) fn new() -> Self {
        Self::with_hasher(DefaultHashBuilder::default())
    }

    /// An arena whose table hashes keys with `hasher`: the cache's own, so that the hash
    /// that picked the shard also finds the key ([`find_hashed`](Self::find_hashed)).
    pub(crate) fn with_hasher(hasher: DefaultHashBuilder) -> Self {
        Self::with_policy(hasher, P::default())
    }
}

impl<K: Hash + Eq, V, P> Arena<K, V, P> {
    /// [`with_hasher`](Self::with_hasher), with the policy's state to keep in the order.
    pub(crate) fn with_policy(hasher: DefaultHashBuilder, policy: P) -> Self {
        Self {
            order: Mutex::new(Order { lists: [List::EMPTY; LISTS], links: Vec::new(), policy }),
            table: HashTable::new(),
            table_hasher: hasher,
            nodes: Vec::new(),
            free: Vec::new(),
        }
    }

    /// The order, held exclusively with the arena (no locking).
    #[inline]
    pub(crate) fn recency(&mut self) -> Recency<'_, K, V, P> {
        Recency { nodes: &self.nodes, order: self.order.get_mut() }
    }

    /// The order under a shared hold of the arena, if no one else has it: a
    /// compare-and-swap, and no waiting.
    #[inline]
    pub(crate) fn try_recency(&self) -> Option<HeldOrder<'_, K, V, P>> {
        Some(HeldOrder { nodes: &self.nodes, order: self.order.try_lock()? })
    }

    /// The policy's own state, held exclusively with the arena.
    #[inline]
    pub(crate) fn policy(&mut self) -> &mut P {
        &mut self.order.get_mut().policy
    }

    /// `key`'s hash, as [`find_hashed`](Self::find_hashed) takes it.
    #[inline]
    pub(crate) fn hash<Q: Hash + ?Sized>(&self, key: &Q) -> u64 {
        self.table_hasher.hash_one(key)
    }

    /// Entries held, in lists or not.
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    /// Weight held by `list`. Takes the order's lock (waiting for a replay under a
    /// shared hold to end); with the arena held exclusively, [`recency`](Self::recency)
    /// reads it without.
    pub(crate) fn used(&self, list: usize) -> usize {
        self.order.lock().lists.get(list).map_or(0, |l| l.used)
    }

    /// Weight held by all lists; locks as [`used`](Self::used) does.
    pub(crate) fn used_total(&self) -> usize {
        self.order.lock().used_total()
    }

    #[inline]
    pub(crate) fn node(&self, i: u32) -> Option<&Node<K, V>> {
        self.nodes.get(i as usize).and_then(Option::as_ref)
    }

    #[inline]
    pub(crate) fn node_mut(&mut self, i: u32) -> Option<&mut Node<K, V>> {
        self.nodes.get_mut(i as usize).and_then(Option::as_mut)
    }

    /// The node holding `key` (whose [`hash`](Self::hash) is `hash`), with its index.
    #[inline]
    pub(crate) fn get<Q>(&self, hash: u64, key: &Q) -> Option<(u32, &Node<K, V>)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let i = self.find_hashed(hash, key)?;
        self.node(i).map(|n| (i, n))
    }

    /// The node holding `key`.
    #[inline]
    pub(crate) fn find<Q>(&self, key: &Q) -> Option<u32>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.find_hashed(self.hash(key), key)
    }

    /// The node holding `key`, whose [`hash`](Self::hash) is `hash`.
    #[inline]
    pub(crate) fn find_hashed<Q>(&self, hash: u64, key: &Q) -> Option<u32>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let nodes = &self.nodes;
        self.table
            .find(hash, |&i| {
                nodes.get(i as usize).and_then(Option::as_ref).is_some_and(|n| n.key.borrow() == key)
            })
            .copied()
    }

    /// The least recent node of `list` and its weight.
    #[inline]
    pub(crate) fn lru_of(&mut self, list: usize) -> Option<(u32, usize)> {
        self.recency().lru_of(list)
    }

    /// The list node `i` is in (or was last in).
    #[inline]
    pub(crate) fn list_of(&mut self, i: u32) -> Option<usize> {
        self.recency().list_of(i)
    }

    /// See [`Recency::unlink`].
    #[inline]
    pub(crate) fn unlink(&mut self, i: u32) {
        self.recency().unlink(i);
    }

    /// See [`Recency::link_front`].
    #[inline]
    pub(crate) fn link_front(&mut self, i: u32, list: usize) {
        self.recency().link_front(i, list);
    }

    /// See [`Recency::touch`].
    #[cfg(test)]
    pub(crate) fn touch(&mut self, i: u32) {
        self.recency().touch(i);
    }

    /// See [`Recency::move_front`].
    #[cfg(test)]
    pub(crate) fn move_front(&mut self, i: u32, list: usize) {
        self.recency().move_front(i, list);
    }

    /// Gives node `i` the stamp of a link (exclusively: see [`Node::stamp`]).
    #[inline]
    pub(crate) fn set_stamp(&mut self, i: u32, stamp: u64) {
        if let Some(n) = self.node_mut(i) {
            *n.stamp.get_mut() = stamp;
        }
    }

    /// Node `i`'s marks ([`STAMPED`], [`SEEN`]), cleared.
    #[inline]
    pub(crate) fn take_marks(&mut self, i: u32) -> u64 {
        self.node_mut(i).map_or(0, Node::take_marks)
    }

    /// Replaces node `i`'s entry, keeping the weights of its list right; returns the old.
    pub(crate) fn replace(&mut self, i: u32, entry: Entry<V>) -> Option<Entry<V>> {
        let list = self.list_of(i)?;
        self.unlink(i);
        let node = self.node_mut(i)?;
        let Entry { value, weight, expires } = entry;
        let old = Entry {
            value: std::mem::replace(&mut node.value, value),
            weight: node.weight(),
            expires: node.expires(),
        };
        node.weight = encode_weight(weight);
        // A new deadline, and no marks.
        *node.deadline.get_mut() = expires.min(NEVER);
        self.link_front(i, list);
        Some(old)
    }

    /// A new node for a key not held, as the most recent of `list`.
    #[cfg(test)]
    pub(crate) fn insert(&mut self, key: K, entry: Entry<V>, list: usize) -> u32 {
        self.insert_hashed(self.hash(&key), key, entry, list)
    }

    /// [`insert`](Self::insert) of a key whose [`hash`](Self::hash) is `table_hash`.
    #[cfg(test)]
    pub(crate) fn insert_hashed(&mut self, table_hash: u64, key: K, entry: Entry<V>, list: usize) -> u32 {
        let links = &mut self.order.get_mut().links;
        let i = Self::alloc(&mut self.nodes, links, &mut self.free, Node::new(key, entry));
        // Growing the table rehashes the keys (rare: it doubles).
        self.table.insert_unique(table_hash, i, rehash(&self.nodes, &self.table_hasher));
        self.link_front(i, list);
        i
    }

    /// Inserts `key` (whose [`hash`](Self::hash) is `table_hash`) as the most recent of
    /// `list`, or, when it is held, [`replace`](Self::replace)s its entry, which makes it
    /// the most recent of its own list: one probe of the table either way. Returns the
    /// node and the entry replaced, if any.
    #[inline]
    pub(crate) fn upsert_hashed(
        &mut self,
        table_hash: u64,
        key: K,
        entry: Entry<V>,
        list: usize,
    ) -> (u32, Option<Entry<V>>) {
        let (nodes, hasher) = (&self.nodes, &self.table_hasher);
        let slot = self.table.entry(
            table_hash,
            |&j| nodes.get(j as usize).and_then(Option::as_ref).is_some_and(|n| n.key == key),
            // Making room rehashes the keys (rare: the table doubles).
            rehash(nodes, hasher),
        );
        match slot {
            hash_table::Entry::Occupied(held) => {
                let i = *held.get();
                (i, self.replace(i, entry))
            }
            hash_table::Entry::Vacant(room) => {
                let links = &mut self.order.get_mut().links;
                let i = Self::alloc(&mut self.nodes, links, &mut self.free, Node::new(key, entry));
                room.insert(i);
                self.link_front(i, list);
                (i, None)
            }
        }
    }

    /// A slot for `node`, out of every list: a freed one if there is one.
    fn alloc(
        nodes: &mut Vec<Option<Node<K, V>>>,
        links: &mut Vec<Link>,
        free: &mut Vec<u32>,
        node: Node<K, V>,
    ) -> u32 {
        if let Some(i) = free.pop()
            && let (Some(slot), Some(link)) = (nodes.get_mut(i as usize), links.get_mut(i as usize))
        {
            *slot = Some(node);
            *link = Link::OUT;
            return i;
        }
        nodes.push(Some(node));
        links.push(Link::OUT);
        (nodes.len() - 1) as u32
    }

    /// Removes node `i` from its list, the table and the arena.
    pub(crate) fn remove(&mut self, i: u32) -> Option<(K, Entry<V>)> {
        self.unlink(i);
        let hash = self.table_hasher.hash_one(&self.node(i)?.key);
        if let Ok(found) = self.table.find_entry(hash, |&j| j == i) {
            found.remove();
        }
        let node = self.nodes.get_mut(i as usize)?.take()?;
        self.free.push(i);
        Some(node.into_parts())
    }

    /// Every held node, with its index, in no order (tests).
    #[cfg(test)]
    pub(crate) fn nodes(&self) -> impl Iterator<Item = (u32, &Node<K, V>)> {
        (0..self.nodes.len() as u32).filter_map(|i| self.node(i).map(|n| (i, n)))
    }

    /// Nodes whose entry has expired.
    pub(crate) fn expired(&self, now: &Now<'_>) -> Vec<u32> {
        (0..self.nodes.len() as u32).filter(|&i| self.node(i).is_some_and(|n| n.is_expired(now))).collect()
    }

    /// Removes every node whose key `keep` refuses; the others keep their order.
    #[cfg(test)]
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&K) -> bool) {
        for i in 0..self.nodes.len() as u32 {
            if self.node(i).is_some_and(|n| !keep(&n.key)) {
                self.remove(i);
            }
        }
    }

    /// Drops every node (the policy's own state stays).
    pub(crate) fn clear(&mut self) {
        self.table.clear();
        self.nodes.clear();
        self.free.clear();
        let order = self.order.get_mut();
        order.links.clear();
        order.lists = [List::EMPTY; LISTS];
    }

    /// The keys of `list`, least recent first (locks as [`used`](Self::used) does).
    #[cfg(test)]
    pub(crate) fn keys_lru_first(&self, list: usize) -> Vec<&K> {
        let order = self.order.lock();
        let mut out = Vec::new();
        let mut at = order.lists.get(list).map_or(NIL, |l| l.tail);
        while let Some(n) = self.node(at) {
            out.push(&n.key);
            at = order.links.get(at as usize).map_or(NIL, |l| l.prev);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;

    #[derive(Debug, Clone)]
    enum Op {
        Insert {
            key: u8,
            weight: usize,
            list: usize,
        },
        Touch {
            key: u8,
        },
        Move {
            key: u8,
            list: usize,
        },
        Remove {
            key: u8,
        },
        Replace {
            key: u8,
            weight: usize,
        },
        PopLru {
            list: usize,
        },
        /// Inserts in `list`, or replaces in the key's own list.
        Upsert {
            key: u8,
            weight: usize,
            list: usize,
        },
        /// Keeps the keys of one parity.
        Retain {
            odd: bool,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        let key = 0..24u8;
        let list = 0..LISTS;
        prop_oneof![
            (key.clone(), 1..5usize, list.clone()).prop_map(|(key, weight, list)| Op::Insert {
                key,
                weight,
                list
            }),
            key.clone().prop_map(|key| Op::Touch { key }),
            (key.clone(), list.clone()).prop_map(|(key, list)| Op::Move { key, list }),
            key.clone().prop_map(|key| Op::Remove { key }),
            (key, 1..5usize).prop_map(|(key, weight)| Op::Replace { key, weight }),
            list.clone().prop_map(|list| Op::PopLru { list }),
            (0..24u8, 1..5usize, list).prop_map(|(key, weight, list)| Op::Upsert { key, weight, list }),
            any::<bool>().prop_map(|odd| Op::Retain { odd }),
        ]
    }

    proptest! {
        /// Against a model of one deque per list (front = most recent): the same keys in
        /// the same order, the same weights, the same lookups, after any operations.
        #[test]
        fn matches_a_model_of_deques(ops in prop::collection::vec(op(), 1..200)) {
            let mut a: Arena<u8, u32> = Arena::new();
            let mut model: [VecDeque<(u8, usize)>; LISTS] = Default::default();
            let locate = |m: &[VecDeque<(u8, usize)>; LISTS], key: u8| {
                m.iter().enumerate().find_map(|(l, d)| d.iter().position(|&(k, _)| k == key).map(|p| (l, p)))
            };
            for op in ops {
                match op {
                    Op::Insert { key, weight, list } => {
                        if locate(&model, key).is_none() {
                            a.insert(key, entry(weight), list);
                            model[list].push_front((key, weight));
                        }
                    }
                    Op::Touch { key } => {
                        if let (Some(i), Some((l, p))) = (a.find(&key), locate(&model, key)) {
                            a.touch(i);
                            let kw = model[l].remove(p).expect("located");
                            model[l].push_front(kw);
                        }
                    }
                    Op::Move { key, list } => {
                        if let (Some(i), Some((l, p))) = (a.find(&key), locate(&model, key)) {
                            a.move_front(i, list);
                            let kw = model[l].remove(p).expect("located");
                            model[list].push_front(kw);
                        }
                    }
                    Op::Remove { key } => {
                        let removed = a.find(&key).and_then(|i| a.remove(i)).map(|(k, _)| k);
                        let expected = locate(&model, key).and_then(|(l, p)| model[l].remove(p)).map(|(k, _)| k);
                        prop_assert_eq!(removed, expected);
                    }
                    Op::Replace { key, weight } => {
                        if let (Some(i), Some((l, p))) = (a.find(&key), locate(&model, key)) {
                            prop_assert!(a.replace(i, entry(weight)).is_some());
                            model[l].remove(p);
                            model[l].push_front((key, weight));
                        }
                    }
                    Op::Upsert { key, weight, list } => {
                        let hash = a.hash(&key);
                        let (i, replaced) = a.upsert_hashed(hash, key, entry(weight), list);
                        prop_assert_eq!(a.find(&key), Some(i));
                        match locate(&model, key) {
                            Some((l, p)) => {
                                let (_, old) = model[l].remove(p).expect("located");
                                prop_assert_eq!(replaced.map(|e| e.weight), Some(old));
                                model[l].push_front((key, weight));
                            }
                            None => {
                                prop_assert!(replaced.is_none());
                                model[list].push_front((key, weight));
                            }
                        }
                    }
                    Op::PopLru { list } => {
                        let popped = a.lru_of(list).and_then(|(i, _)| a.remove(i)).map(|(k, _)| k);
                        prop_assert_eq!(popped, model[list].pop_back().map(|(k, _)| k));
                    }
                    Op::Retain { odd } => {
                        a.retain(|k| (k % 2 == 1) == odd);
                        for d in &mut model {
                            d.retain(|&(k, _)| (k % 2 == 1) == odd);
                        }
                    }
                }
                for (l, d) in model.iter().enumerate() {
                    let want: Vec<&u8> = d.iter().rev().map(|(k, _)| k).collect();
                    prop_assert_eq!(a.keys_lru_first(l), want, "list {}", l);
                    prop_assert_eq!(a.used(l), d.iter().map(|&(_, w)| w).sum::<usize>());
                }
                prop_assert_eq!(a.len(), model.iter().map(VecDeque::len).sum::<usize>());
                for key in 0..24u8 {
                    prop_assert_eq!(a.find(&key).is_some(), locate(&model, key).is_some());
                }
            }
        }
    }

    fn entry(weight: usize) -> Entry<u32> {
        Entry { value: 0, weight, expires: super::super::entry::NEVER }
    }

    #[test]
    fn lists_keep_order_weights_and_reuse_slots() {
        let mut a: Arena<u32, u32> = Arena::new();
        for k in 0..4 {
            a.insert(k, entry(2), 0);
        }
        assert_eq!(a.keys_lru_first(0), [&0, &1, &2, &3]);
        assert_eq!((a.used(0), a.len()), (8, 4));
        let i1 = a.find(&1).expect("held");
        a.move_front(i1, 0);
        assert_eq!(a.keys_lru_first(0), [&0, &2, &3, &1]);
        for (k, order) in [(0, [&2, &3, &1, &0]), (0, [&2, &3, &1, &0]), (3, [&2, &1, &0, &3])] {
            let i = a.find(&k).expect("held");
            a.touch(i);
            assert_eq!(a.keys_lru_first(0), order, "touched {k}");
        }
        let i2 = a.find(&2).expect("held");
        a.touch(i2);
        a.touch(i1);
        assert_eq!((a.keys_lru_first(0), a.used(0)), (vec![&0, &3, &2, &1], 8), "head, tail and weight");
        a.move_front(i1, 2);
        assert_eq!((a.used(0), a.used(2), a.used_total()), (6, 2, 8));
        assert_eq!(a.keys_lru_first(2), [&1]);
        let (lru, w) = a.lru_of(0).expect("non-empty");
        assert_eq!((a.node(lru).map(|n| n.key), w), (Some(0), 2));
        assert_eq!(a.remove(lru).map(|(k, _)| k), Some(0));
        assert_eq!(a.find(&0), None);
        let again = a.insert(9, entry(1), 0);
        assert_eq!(again, lru, "the freed slot is reused");
        assert_eq!(a.keys_lru_first(0), [&3, &2, &9]);
        // Unlinking twice, or a node out of every list, changes nothing.
        let i3 = a.find(&3).expect("held");
        a.unlink(i3);
        a.unlink(i3);
        a.touch(i3);
        assert_eq!((a.keys_lru_first(0), a.used(0)), (vec![&2, &9], 3));
        assert!(a.replace(i3, entry(5)).is_some());
        assert_eq!((a.keys_lru_first(0), a.used(0)), (vec![&2, &9, &3], 8));
        a.clear();
        assert_eq!((a.len(), a.used_total(), a.keys_lru_first(0).len()), (0, 0, 0));
    }
}
