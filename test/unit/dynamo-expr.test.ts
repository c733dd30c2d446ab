import { describe, expect, it } from 'vitest';
import { allOf, anyOf, condition, eq, lessThan, update } from '../../functions/adapters/dynamo/expr.js';

describe('condition expressions', () => {
  it('give two parts with the same attribute and value names distinct placeholders', () => {
    // Act
    const built = condition(allOf(eq('owner', 'a'), anyOf(eq('owner', 'b'), lessThan('owner', 'c'))));

    // Assess
    expect(built.ConditionExpression).toBe('(#n0 = :v0) AND ((#n1 = :v1) OR (#n2 < :v2))');
    expect(built.ExpressionAttributeNames).toEqual({ '#n0': 'owner', '#n1': 'owner', '#n2': 'owner' });
    expect(built.ExpressionAttributeValues).toEqual({ ':v0': 'a', ':v1': 'b', ':v2': 'c' });
  });

  it('number an update and its condition from one set, so neither overwrites the other', () => {
    // Act
    const built = update(
      {
        set: [
          ['state', 'done'],
          [['attrs', 'state'], 'x'],
        ],
        add: [['count', 1]],
        remove: ['gsi2pk'],
      },
      eq('state', 'in_progress'),
    );

    // Assess
    expect(built?.UpdateExpression).toBe('ADD #n3 :v2 SET #n0 = :v0, #n1.#n2 = :v1 REMOVE #n4');
    expect(built?.ConditionExpression).toBe('#n5 = :v3');
    expect(built?.ExpressionAttributeValues).toEqual({
      ':v0': 'done',
      ':v1': 'x',
      ':v2': 1,
      ':v3': 'in_progress',
    });
    expect(built?.ExpressionAttributeNames).toMatchObject({ '#n0': 'state', '#n2': 'state', '#n5': 'state' });
  });

  it('leave out an update that changes nothing', () => {
    expect(update({}, eq('owner', 'a'))).toBeUndefined();
  });
});
