// Federator's pages: start the GOV.UK components, then the lookup form's
// progress. Loaded as a module from a file (the CSP allows no inline script).
import { initAll } from '/assets/govuk-frontend.min.js'

// What govuk-frontend's inline snippet does, in case a strict CSP blocked it.
document.body.classList.add('js-enabled', 'govuk-frontend-supported')
initAll()

// The "another authority" select as alphagov's accessible autocomplete
// (a plain select without JavaScript, or if the script did not load).
function bindAutocomplete (scope) {
  if (!window.accessibleAutocomplete) return
  scope.querySelectorAll('select[data-module="app-autocomplete"]').forEach((select) => {
    window.accessibleAutocomplete.enhanceSelectElement({
      selectElement: select,
      defaultValue: '',
      showAllValues: true,
      dropdownArrow: () => '',
      tNoResults: () => 'No authority found'
    })
  })
}

function bindPrint (scope) {
  scope.querySelectorAll('[data-module="app-print"]').forEach((button) => {
    button.hidden = false
    button.addEventListener('click', () => window.print())
  })
}

// Replace <main> with the <main> of a page the server rendered.
function showPage (html) {
  const page = new DOMParser().parseFromString(html, 'text/html')
  const main = document.getElementById('main-content')
  main.innerHTML = page.getElementById('main-content').innerHTML
  document.title = page.title
  initAll({ scope: main })
  bindPrint(main)
  bindAutocomplete(main)
  const focus = main.querySelector('.govuk-error-summary') ||
    main.querySelector('#results-heading') || main.querySelector('h1')
  if (focus) {
    if (!focus.hasAttribute('tabindex')) focus.setAttribute('tabindex', '-1')
    focus.focus()
  }
  bindLookupForm(main)
}

function parseEvents (buffer, onEvent) {
  const blocks = buffer.split('\n\n')
  const rest = blocks.pop()
  for (const block of blocks) {
    let kind = 'message'
    const data = []
    for (const line of block.split('\n')) {
      if (line.startsWith('event: ')) kind = line.slice(7)
      else if (line.startsWith('data: ')) data.push(line.slice(6))
    }
    if (data.length) onEvent(kind, JSON.parse(data.join('\n')))
  }
  return rest
}

const OUTCOMES = {
  match: 'knows the child',
  no_match: 'does not know the child',
  declined: 'declined to answer',
  timeout: 'did not answer in time',
  error: 'could not be reached',
  unavailable: 'is unavailable'
}

async function runLookup (form) {
  const progress = document.getElementById('lookup-progress')
  const count = document.getElementById('lookup-progress-count')
  const list = document.getElementById('lookup-progress-list')
  const button = form.querySelector('button[type="submit"], .govuk-button')
  if (button) button.disabled = true
  progress.hidden = false
  list.innerHTML = ''
  count.textContent = 'Sending your question…'
  progress.scrollIntoView({ block: 'nearest' })
  let response
  try {
    response = await fetch(form.action, {
      method: 'POST',
      body: new FormData(form),
      headers: { Accept: 'text/event-stream' },
      credentials: 'same-origin'
    })
  } catch (e) {
    count.textContent = 'The lookup could not be sent. Check your connection and try again.'
    if (button) button.disabled = false
    return
  }
  const type = response.headers.get('Content-Type') || ''
  if (!type.startsWith('text/event-stream')) {
    // Errors on the form, or an error page: show what the server rendered.
    showPage(await response.text())
    return
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader()
  let buffer = ''
  let done = false
  while (!done) {
    const chunk = await reader.read()
    done = chunk.done
    if (chunk.value) {
      buffer = parseEvents(buffer + chunk.value, (kind, data) => {
        if (kind === 'progress') {
          count.textContent = data.total
            ? `${data.answered} of ${data.total} authorities have answered`
            : `${data.answered} authorities have answered`
          const item = document.createElement('li')
          item.textContent = `${data.name}: ${OUTCOMES[data.outcome] || data.outcome}`
          list.appendChild(item)
        } else if (kind === 'result') {
          showPage(data.html)
        } else if (kind === 'failure') {
          count.textContent = data.text
          if (button) button.disabled = false
        }
      })
    }
  }
}

function bindLookupForm (scope) {
  const form = scope.querySelector('[data-module="app-lookup-form"]')
  if (!form || !window.fetch || !window.TextDecoderStream) return
  form.addEventListener('submit', (event) => {
    event.preventDefault()
    runLookup(form)
  })
}

bindPrint(document)
bindLookupForm(document)
bindAutocomplete(document)
