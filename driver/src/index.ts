/** The uPC driver: on Linux, a session's namespaces built from its policy, and its desktop. */
export {
  DriverError,
  enter,
  enterCommand,
  type EnterOptions,
  HOST_SECRETS,
  isolationAvailable,
  isRunning,
  type NamespaceSession,
  planSession,
  prepareBuilder,
  type PreparedBuilder,
  type SessionSpec,
  startSession,
  stopSession,
} from './linux/session.js';
export { startTimeOf } from './linux/ids.js';
export {
  hasOpenBeneath,
  isOpaqueAt,
  openBeneath,
  type Operation,
  perform,
  type Result,
} from './linux/privileged.js';
export {
  chooseDesktop,
  type Desktop,
  type DesktopKind,
  type Run,
  screenshot,
  startDesktop,
  stopDesktop,
  type SwitchResult,
  switchTo,
} from './linux/desktop.js';
