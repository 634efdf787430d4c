/**
 * The ordering and rollback planning of stack updates (src/ops/stack-plan.ts):
 * pure, no host. etcd -> flannel -> docker, plus an unrelated hello and a
 * dependent that is not updated (agent, after docker).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { dependencyOrder, dependentsOf, needsGraph, planRollback, unitsToStop } from '../../src/ops/stack-plan.ts';

const graph = needsGraph([
  { name: 'docker', ordering: { after: ['flannel.service'], requires: ['flannel.service'] } },
  { name: 'hello', ordering: {} },
  { name: 'flannel', ordering: { after: ['etcd.service'], requiredBy: ['docker.service'] } },
  { name: 'etcd', ordering: { after: ['network.target'] } },
  { name: 'agent', ordering: { wants: ['docker'] } },
]);

describe('stack planning', () => {
  it('reads needs from both sides of the ordering, bare names and units alike', () => {
    assert.deepEqual(graph.get('docker'), ['flannel']);
    assert.deepEqual(graph.get('flannel'), ['etcd']);
    assert.deepEqual(graph.get('etcd'), []);
    assert.deepEqual(graph.get('agent'), ['docker']);
  });

  it('orders by dependency, otherwise as given; through containers not listed too', () => {
    assert.deepEqual(dependencyOrder(graph, ['docker', 'hello', 'flannel', 'etcd']), ['hello', 'etcd', 'flannel', 'docker']);
    assert.deepEqual(dependencyOrder(graph, ['agent', 'etcd']), ['etcd', 'agent']);
  });

  it('breaks a cycle in the order given instead of looping', () => {
    const cyclic = needsGraph([{ name: 'a', ordering: { wants: ['b'] } }, { name: 'b', ordering: { wants: ['a'] } }]);
    assert.deepEqual(dependencyOrder(cyclic, ['b', 'a']), ['b', 'a']);
  });

  it('finds transitive dependents in order, and stops the active ones dependents first', () => {
    assert.deepEqual(dependentsOf(graph, ['etcd']), ['flannel', 'docker', 'agent']);
    const active = new Set(['etcd', 'flannel', 'docker', 'agent', 'hello']);
    assert.deepEqual(unitsToStop(graph, ['etcd'], active, []), ['agent', 'docker', 'flannel']);
    assert.deepEqual(unitsToStop(graph, ['flannel'], active, ['agent', 'docker', 'flannel']), [], 'already stopped: not again');
    assert.deepEqual(unitsToStop(graph, ['flannel'], new Set(['docker']), []), ['docker'], 'inactive ones stay as they are');
  });

  it('rolls back every member last first, then brings up each unit once in dependency order', () => {
    // etcd switched and proven, flannel switched and failed, docker staged only; the stack stopped flannel, docker, agent.
    const plan = planRollback(
      graph,
      [
        { name: 'etcd', wasActive: true, switched: true },
        { name: 'flannel', wasActive: true, switched: true },
        { name: 'docker', wasActive: true, switched: false },
      ],
      new Set(['etcd', 'hello']),
      ['agent', 'docker', 'flannel'],
    );
    assert.deepEqual(plan.back, ['docker', 'flannel', 'etcd']);
    assert.deepEqual(plan.stop, []);
    assert.deepEqual(plan.bringUp, [
      { name: 'etcd', how: 'restart' },
      { name: 'flannel', how: 'restart' },
      { name: 'docker', how: 'start' },
      { name: 'agent', how: 'start' },
    ]);
  });

  it('stops active dependents the stack has not stopped, and leaves what did not run alone', () => {
    const plan = planRollback(graph, [{ name: 'docker', wasActive: false, switched: true }], new Set(['agent']), []);
    assert.deepEqual(plan.stop, ['agent']);
    assert.deepEqual(plan.bringUp, [{ name: 'agent', how: 'start' }], 'docker did not run before: it is not started');
  });

  it('a stack that failed while staging only drops its new slots', () => {
    const plan = planRollback(graph, [{ name: 'etcd', wasActive: true, switched: false }, { name: 'flannel', wasActive: true, switched: false }], new Set(['etcd', 'flannel']), []);
    assert.deepEqual(plan, { back: ['flannel', 'etcd'], stop: [], bringUp: [] });
  });
});
