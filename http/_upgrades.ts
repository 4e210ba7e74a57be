/**
 * Upgrade responses made by `upgradeConnection` (private), recognised by the
 * server when a handler returns one.
 *
 * @module
 */
import type { UpgradedConnection } from "./upgrade.ts";

/** What the server needs to know about an upgrade response. */
export interface UpgradeRecord {
  request: Request;
  headers: Headers;
  resolve: (upgraded: UpgradedConnection) => void;
  reject: (error: Error) => void;
}

/** Upgrade responses, recognised by the server. */
export const UPGRADES: WeakMap<Response, UpgradeRecord> = new WeakMap();
