// A graph-client middleware that turns an asynchronous Graph operation into one call, the way the
// Node connector samples do: when a response carries a `Location` that names an operation
// (`.../operations/{id}`), it waits, then re-runs the rest of the chain with a GET of that absolute URL,
// and keeps doing so while the operation's `status` is `inprogress`. The caller gets the last
// operation's body (`{"id", "status": "completed" | "failed", "error"}`) as the result of its PATCH.

export class CompleteJobWithDelayMiddleware {
  // delayMs: the wait before each poll; onLocation: told every Location seen (for logging)
  constructor(delayMs, onLocation, maxPolls = 120) {
    this.delayMs = delayMs;
    this.onLocation = onLocation;
    this.maxPolls = maxPolls;
    this.polls = new WeakMap(); // context -> polls sent for it
    this.nextMiddleware = undefined;
  }

  setNext(next) {
    this.nextMiddleware = next;
  }

  async execute(context) {
    await this.nextMiddleware.execute(context);

    const location = context.response.headers.get('location');
    if (location) {
      this.onLocation?.(location);
      if (!location.includes('/operations/')) {
        // a Location that is not a job (a created entity, say): nothing to follow
        return;
      }
      await this.beforePoll(context);
      // The URL is absolute (https://graph.microsoft.com/v1.0/...); fetch rejects a relative one.
      context.request = location;
      context.options.method = 'GET';
      context.options.body = undefined;
      await this.execute(context);
      return;
    }

    const url = typeof context.request === 'string' ? context.request : context.request.url;
    if (!url.includes('/operations/') || !context.response.ok) {
      return;
    }
    const operation = await context.response.clone().json();
    if (operation.status === 'inprogress') {
      await this.beforePoll(context);
      await this.execute(context);
    }
  }

  async beforePoll(context) {
    const polls = (this.polls.get(context) ?? 0) + 1;
    if (polls > this.maxPolls) {
      throw new Error(`the operation is still not done after ${this.maxPolls} polls`);
    }
    this.polls.set(context, polls);
    await sleep(this.delayMs);
  }
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
