/** What the upload page needs to know. */
export interface UploadPageOptions {
  /** The tus endpoint (creation URL) uploads go to: a path on the page's origin, or an absolute URL. */
  readonly endpoint: string
  /** Where the page loads tus-js-client's browser bundle from. Default `tus.min.js`, next to the page. */
  readonly clientScript?: string
  /** The page's title and heading. Default `Upload files`. */
  readonly title?: string
}

/**
 * The upload page: pick or drop files, a progress bar per file with pause and
 * resume, automatic retries after a network drop, resumption of an upload
 * interrupted earlier (tus-js-client remembers it in localStorage), and a list
 * of the uploads completed. Plain HTML and JavaScript on tus-js-client's
 * browser bundle: nothing to build.
 */
export function uploadPage ({ endpoint, clientScript = 'tus.min.js', title = 'Upload files' }: UploadPageOptions): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>
  :root { font-family: system-ui, sans-serif; color: #1d2330; background: #f5f6f8; }
  main { max-width: 46rem; margin: 2rem auto; padding: 0 1rem; }
  h1 { font-size: 1.5rem; margin-bottom: .25rem; }
  h2 { font-size: 1.1rem; margin-top: 2rem; }
  .endpoint { color: #5b6475; margin-top: 0; }
  .drop { display: block; border: 2px dashed #9aa3b5; border-radius: .75rem; padding: 2.5rem 1rem; text-align: center; background: #fff; cursor: pointer; }
  .drop.over { border-color: #2b6cdf; background: #eef3fd; }
  .drop input { display: block; margin: .75rem auto 0; }
  ul { list-style: none; padding: 0; }
  .upload { background: #fff; border-radius: .5rem; padding: .75rem 1rem; margin: .5rem 0; box-shadow: 0 1px 2px #0002; }
  .upload .line { display: flex; justify-content: space-between; gap: 1rem; align-items: center; }
  .upload .name { font-weight: 600; overflow-wrap: anywhere; }
  .upload progress { width: 100%; height: .8rem; margin: .5rem 0 .25rem; }
  .upload .status { color: #5b6475; font-size: .9rem; }
  .upload[data-state=failed] .status { color: #b42318; }
  .upload[data-state=done] .status { color: #1a7f37; }
  button { font: inherit; padding: .3rem .9rem; border-radius: .4rem; border: 1px solid #9aa3b5; background: #fff; cursor: pointer; }
  button[hidden] { display: none; }
  #completed li { padding: .25rem 0; }
  #completed .none { color: #5b6475; }
</style>
</head>
<body>
<main>
  <h1>${escapeHtml(title)}</h1>
  <p class="endpoint">Resumable uploads (tus) to <code id="endpoint"></code></p>
  <label class="drop" id="drop" data-testid="drop">
    Drop files here, or choose them:
    <input type="file" id="files" multiple data-testid="file-input">
  </label>
  <ul id="uploads" data-testid="uploads"></ul>
  <h2>Completed</h2>
  <ul id="completed" data-testid="completed"><li class="none">None yet.</li></ul>
</main>
<script src="${escapeHtml(clientScript)}"></script>
<script>
(function () {
  'use strict'
  var endpoint = new URL(${scriptString(endpoint)}, location.href).href
  document.getElementById('endpoint').textContent = endpoint
  var list = document.getElementById('uploads')
  var completed = document.getElementById('completed')
  var drop = document.getElementById('drop')
  var input = document.getElementById('files')

  input.addEventListener('change', function () {
    Array.prototype.forEach.call(input.files, start)
    input.value = ''
  })
  drop.addEventListener('dragover', function (event) { event.preventDefault(); drop.classList.add('over') })
  drop.addEventListener('dragleave', function () { drop.classList.remove('over') })
  drop.addEventListener('drop', function (event) {
    event.preventDefault()
    drop.classList.remove('over')
    Array.prototype.forEach.call(event.dataTransfer.files, start)
  })

  function start (file) {
    var row = element('li', 'upload')
    row.dataset.testid = 'upload'
    row.dataset.name = file.name
    var line = element('div', 'line')
    var name = element('span', 'name', file.name)
    var toggle = element('button', 'toggle', 'Pause')
    toggle.type = 'button'
    toggle.dataset.testid = 'toggle'
    line.append(name, toggle)
    var bar = element('progress')
    bar.max = 100
    bar.value = 0
    var status = element('div', 'status', 'Starting')
    status.dataset.testid = 'status'
    row.append(line, bar, status)
    list.append(row)

    var running = false
    var upload = new tus.Upload(file, {
      endpoint: endpoint,
      retryDelays: [0, 1000, 2000, 5000, 10000, 20000, 30000, 60000],
      metadata: { filename: file.name, filetype: file.type || 'application/octet-stream' },
      removeFingerprintOnSuccess: true,
      onProgress: function (sent, total) {
        var percent = total > 0 ? Math.floor(sent / total * 100) : 100
        bar.value = percent
        row.dataset.percent = String(percent)
        show('uploading', percent + '% of ' + size(total))
      },
      onShouldRetry: function (error, attempt) {
        var response = error.originalResponse
        var code = response ? response.getStatus() : 0
        var creating = error.originalRequest && error.originalRequest.getMethod() === 'POST'
        // a refused creation (a file of that name exists: 409) stays refused; a PATCH conflict resumes
        var again = code === 0 || code >= 500 || code === 408 || code === 423 || (code === 409 && !creating)
        if (again) show('retrying', 'Connection lost: trying again (' + (attempt + 1) + ')')
        return again
      },
      onError: function (error) {
        running = false
        toggle.textContent = 'Retry'
        show('failed', 'Failed: ' + error.message)
      },
      onSuccess: function () {
        running = false
        toggle.hidden = true
        bar.value = 100
        row.dataset.percent = '100'
        show('done', 'Done: ' + size(file.size))
        var none = completed.querySelector('.none')
        if (none) none.remove()
        var item = element('li')
        item.dataset.testid = 'completed-upload'
        item.dataset.name = file.name
        var link = element('a', '', file.name)
        link.href = upload.url
        item.append(link, document.createTextNode(' (' + size(file.size) + ')'))
        completed.append(item)
      }
    })

    toggle.addEventListener('click', function () {
      if (running) {
        running = false
        upload.abort()
        toggle.textContent = 'Resume'
        show('paused', 'Paused at ' + (row.dataset.percent || '0') + '%')
      } else {
        go()
      }
    })
    go()

    function go () {
      running = true
      toggle.textContent = 'Pause'
      show('uploading', 'Starting')
      upload.findPreviousUploads().then(function (previous) {
        if (previous.length > 0) upload.resumeFromPreviousUpload(previous[0])
        if (running) upload.start()
      })
    }

    function show (state, text) {
      row.dataset.state = state
      status.textContent = text
    }
  }

  function element (tag, className, text) {
    var node = document.createElement(tag)
    if (className) node.className = className
    if (text !== undefined) node.textContent = text
    return node
  }

  function size (bytes) {
    var units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB']
    var index = 0
    while (bytes >= 1024 && index < units.length - 1) { bytes /= 1024; index++ }
    return (index === 0 ? bytes : bytes.toFixed(1)) + ' ' + units[index]
  }
})()
</script>
</body>
</html>
`
}

function escapeHtml (text: string): string {
  return text.replace(/[&<>"']/g, (character) => `&#${character.charCodeAt(0)};`)
}

/** A JavaScript string literal that cannot end the script element it is in. */
function scriptString (text: string): string {
  return JSON.stringify(text).replace(/</g, '\\u003c')
}
