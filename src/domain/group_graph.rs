//! Cycles in a membership graph: the groups that reach themselves through nesting, as the
//! console draws them. Iterative (no recursion on request data) and linear in nodes and edges.

/// The strongly connected components that hold a cycle (more than one node, or a node that is
/// its own member): each sorted by node index, the list by first node. Edges naming a node
/// outside `0..n_nodes` are ignored.
pub fn cycles(n_nodes: usize, edges: &[(usize, usize)]) -> Vec<Vec<usize>> {
    const UNSEEN: usize = usize::MAX;
    let mut adjacency: Vec<Vec<usize>> = vec![Vec::new(); n_nodes];
    let mut own_member = vec![false; n_nodes];
    for &(from, to) in edges {
        if from >= n_nodes || to >= n_nodes {
            continue;
        }
        own_member[from] |= from == to;
        adjacency[from].push(to);
    }
    let mut index = vec![UNSEEN; n_nodes];
    let mut low = vec![0; n_nodes];
    let mut on_stack = vec![false; n_nodes];
    let mut stack = Vec::new();
    let mut next_index = 0;
    let mut found = Vec::new();
    // Tarjan's walk with an explicit stack of (node, next edge to follow).
    let mut walk: Vec<(usize, usize)> = Vec::new();
    for root in 0..n_nodes {
        if index[root] != UNSEEN {
            continue;
        }
        index[root] = next_index;
        low[root] = next_index;
        next_index += 1;
        stack.push(root);
        on_stack[root] = true;
        walk.push((root, 0));
        while let Some(&(node, position)) = walk.last() {
            if let Some(&child) = adjacency[node].get(position) {
                if let Some(top) = walk.last_mut() {
                    top.1 += 1;
                }
                if index[child] == UNSEEN {
                    index[child] = next_index;
                    low[child] = next_index;
                    next_index += 1;
                    stack.push(child);
                    on_stack[child] = true;
                    walk.push((child, 0));
                } else if on_stack[child] {
                    low[node] = low[node].min(index[child]);
                }
                continue;
            }
            walk.pop();
            if let Some(&(parent, _)) = walk.last() {
                low[parent] = low[parent].min(low[node]);
            }
            if low[node] == index[node] {
                let mut component = Vec::new();
                while let Some(member) = stack.pop() {
                    on_stack[member] = false;
                    component.push(member);
                    if member == node {
                        break;
                    }
                }
                if component.len() > 1 || own_member[node] {
                    component.sort_unstable();
                    found.push(component);
                }
            }
        }
    }
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_each_cycle_once_and_ignores_plain_nesting() {
        // 0 -> 1 -> 2 -> 0 is a cycle; 2 -> 3 -> 4 is nesting; 5 is its own member; 6 alone.
        let edges = [(0, 1), (1, 2), (2, 0), (2, 3), (3, 4), (5, 5), (7, 99)];
        assert_eq!(cycles(8, &edges), vec![vec![0, 1, 2], vec![5]]);
        assert!(cycles(3, &[(0, 1), (1, 2)]).is_empty());
        assert!(cycles(0, &[]).is_empty());
    }

    #[test]
    fn two_cycles_sharing_no_node_and_one_joined_by_a_bridge() {
        let edges = [
            (0, 1),
            (1, 0),
            (1, 2),
            (2, 3),
            (3, 2),
            (4, 5),
            (5, 6),
            (6, 4),
        ];
        assert_eq!(
            cycles(7, &edges),
            vec![vec![0, 1], vec![2, 3], vec![4, 5, 6]]
        );
    }

    #[test]
    fn a_long_chain_does_not_recurse() {
        // A million-long nesting chain closed into one cycle: no stack overflow, one component.
        let n = 1_000_000;
        let edges: Vec<(usize, usize)> = (0..n).map(|i| (i, (i + 1) % n)).collect();
        let found = cycles(n, &edges);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].len(), n);
    }
}
