import { createHash } from 'node:crypto';
import { type CfnElement, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct, IConstruct } from 'constructs';

/**
 * Logical ids that survive moving resources into a construct.
 *
 * CloudFormation replaces a resource whose logical id changes, and CDK derives logical ids
 * from construct paths: moving the forward function, its table or its queues from a stack into
 * a `ForwardApi` construct would replace them (a table loses its data; a named function, log
 * group, alarm or rule fails to create because its old self still holds the name). A construct
 * marked with {@link keepChildLogicalIds} is left out of its children's paths, so they keep the
 * ids they had when the stack built them directly. Only constructs whose resources existed
 * before are marked; new systems nest normally. {@link EventFabricStack} refuses two resources
 * with one logical id, which a transparent construct could otherwise produce silently.
 */
const TRANSPARENT = Symbol.for('eventfabric.keepChildLogicalIds');

export function keepChildLogicalIds(construct: Construct): void {
  Object.defineProperty(construct, TRANSPARENT, { value: true });
}

function isTransparent(construct: IConstruct): boolean {
  return (construct as unknown as Record<symbol, unknown>)[TRANSPARENT] === true;
}

/** aws-cdk-lib's `makeUniqueId` (core/lib/private/uniqueid), which it does not export. */
export function uniqueId(components: string[]): string {
  const parts = components.filter((c) => c !== 'Default');
  if (parts.length === 0) throw new Error('cannot make a logical id of an empty path');
  const alphanumeric = (s: string) => s.replace(/[^A-Za-z0-9]/g, '');
  if (parts.length === 1) {
    const candidate = alphanumeric(parts[0]);
    if (candidate.length <= 255) return candidate;
  }
  const hash = createHash('md5').update(parts.join('/')).digest('hex').slice(0, 8).toUpperCase();
  const human: string[] = [];
  for (const part of parts) {
    if (human.length === 0 || !human[human.length - 1].endsWith(part)) human.push(part);
  }
  return (
    human
      .filter((p) => p !== 'Resource')
      .map(alphanumeric)
      .join('')
      .slice(0, 240) + hash
  );
}

/** A stack whose logical ids skip constructs marked with {@link keepChildLogicalIds}. */
export class EventFabricStack extends Stack {
  private readonly allocated = new Map<string, string>();

  constructor(scope: Construct, id: string, props?: StackProps) {
    super(scope, id, props);
  }

  protected allocateLogicalId(element: CfnElement): string {
    const scopes = element.node.scopes;
    const below = scopes.slice(scopes.indexOf(this) + 1);
    const id = below.slice(0, -1).some(isTransparent)
      ? uniqueId(below.filter((c, i) => i === below.length - 1 || !isTransparent(c)).map((c) => c.node.id))
      : super.allocateLogicalId(element);
    const path = element.node.path;
    const holder = this.allocated.get(id);
    if (holder !== undefined && holder !== path) {
      throw new Error(`${path} and ${holder} would both have the logical id ${id}; rename one of them`);
    }
    this.allocated.set(id, path);
    return id;
  }
}
