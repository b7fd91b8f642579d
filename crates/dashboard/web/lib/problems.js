// Validation errors shown where they belong: the API's problem documents name the faulty
// field as a path (`conditions.$and[1].metadata.cpu_usage.$gt`, `steps[0].action.url`), so
// each message is put under the form control that holds that path's first segment and the
// control is marked `aria-invalid`; what matches no control goes to the form's own slot.

import { h, replace, append } from './dom.js';

/** The first segment of an error path (`conditions` for `conditions.a.$gt`, `steps` for `steps[0].x`). */
export function topField(path) {
  return String(path || '').split(/[.[]/)[0];
}

/**
 * A form's error slots. `fields` maps a body field name to its control; every control gets
 * a `.field-error` slot after it (`id` = control id + `-error`). `general` is where errors
 * about no listed field (or without field list) go.
 */
export function errorSlots(fields, general) {
  const slots = {};
  for (const [name, control] of Object.entries(fields)) {
    const slot = h('p', { class: 'field-error', id: `${control.id || name}-error`, role: 'alert', hidden: true });
    control.setAttribute('aria-describedby', slot.id);
    control.after(slot);
    slots[name] = { control, slot };
  }

  function clear() {
    for (const { control, slot } of Object.values(slots)) {
      control.removeAttribute('aria-invalid');
      replace(slot);
      slot.hidden = true;
    }
    replace(general);
    general.hidden = true;
  }

  /** Shows `problem` (an `ApiProblem` or an `Error`) next to the fields it names. */
  function show(problem) {
    clear();
    const errors = problem?.errors?.length ? problem.errors : [];
    let placed = 0;
    for (const error of errors) {
      const target = slots[topField(error.field)];
      if (!target) continue;
      target.control.setAttribute('aria-invalid', 'true');
      append(target.slot, h('span', { class: 'error-line' },
        error.field && error.field !== topField(error.field) ? h('code', {}, error.field) : null,
        error.field && error.field !== topField(error.field) ? ': ' : null,
        error.reason));
      target.slot.hidden = false;
      placed += 1;
    }
    if (placed < errors.length || errors.length === 0) {
      const rest = errors.filter((e) => !slots[topField(e.field)]);
      append(general, problem?.title && problem?.status ? `${problem.title}: ` : '',
        rest.length ? rest.map((e) => `${e.field}: ${e.reason}`).join('; ') : (problem?.detail || problem?.message || String(problem)));
      general.hidden = false;
    }
    const first = Object.values(slots).find(({ control }) => control.getAttribute('aria-invalid') === 'true');
    first?.control.focus();
  }

  /** Marks one field by hand (client-side checks such as unparsable JSON). */
  function mark(name, message) {
    show({ errors: [{ field: name, reason: message }] });
  }

  return { show, clear, mark };
}

/** Parses the JSON in a textarea, or returns an `Error` saying where it is broken. */
export function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch (error) {
    return new Error(`not valid JSON: ${error.message}`);
  }
}
