// edgelayer demo site: the tasks page talks to /api/tasks through the worker.
(function () {
  'use strict';

  const list = document.querySelector('#task-list');
  const form = document.querySelector('#task-form');
  const status = document.querySelector('#task-status');
  if (!list || !form) return;

  async function api(method, path, body) {
    const res = await fetch(path, {
      method,
      headers: body ? { 'content-type': 'application/json' } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
    if (!res.ok && res.status !== 304) {
      const problem = await res.json().catch(() => ({ error: res.statusText }));
      throw new Error(problem.error || ('HTTP ' + res.status));
    }
    return res.status === 204 ? null : res.json();
  }

  function render(tasks) {
    list.replaceChildren();
    for (const task of tasks) {
      const li = document.createElement('li');
      li.className = task.done ? 'done' : '';
      const box = document.createElement('input');
      box.type = 'checkbox';
      box.checked = task.done;
      box.addEventListener('change', () => update(task.id, { done: box.checked }));
      const title = document.createElement('span');
      title.textContent = task.title;
      const remove = document.createElement('button');
      remove.textContent = 'Delete';
      remove.addEventListener('click', () => destroy(task.id));
      li.append(box, title, remove);
      list.append(li);
    }
    status.textContent = tasks.length + ' task(s)';
  }

  async function refresh() {
    try {
      render(await api('GET', '/api/tasks'));
    } catch (e) {
      status.textContent = e.message;
      status.className = 'error';
    }
  }

  async function update(id, patch) {
    await api('PATCH', '/api/tasks/' + id, patch).catch((e) => (status.textContent = e.message));
    refresh();
  }

  async function destroy(id) {
    await api('DELETE', '/api/tasks/' + id).catch((e) => (status.textContent = e.message));
    refresh();
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const title = form.elements.title.value;
    try {
      await api('POST', '/api/tasks', { title });
      form.reset();
    } catch (e) {
      status.textContent = e.message;
      status.className = 'error';
    }
    refresh();
  });

  refresh();
})();
