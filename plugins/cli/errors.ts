/**
 * An error whose message is one sentence meant for the user: printed as is, without a stack, and
 * the command exits non-zero. Anything else is a bug and is printed with its stack under --debug.
 */
export class UserError extends Error {
  override readonly name = 'UserError';
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}
