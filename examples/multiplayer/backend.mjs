// The session backend of the multiplayer example: one process per document (its key), holding the
// document's state (a shared counter and who is here) and broadcasting every change over socket.io.
// Written with session-backends/backend (in your app: `from 'session-backends/backend'`; here the
// source, run through tsx): it listens where it is told, takes a socket only when the proxy vouches
// for it and its handshake carries the connect response's secret_token, names people by the verified
// user, and saves the document in its data directory when terminated (the next backend for the same
// document starts from it).
import { readFile, rename, writeFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import { join } from 'node:path'
import { Server } from 'socket.io'
import { JamsocketBackend, onTerminate, socketIdentity } from '../../src/backend/index.js'

const backend = new JamsocketBackend() // PORT, HOST, SESSION_BACKEND_*: a clear error when one is missing
const doc = backend.key
const stateFile = backend.dataDir === null ? null : join(backend.dataDir, 'state.json')
let count = await load()

/** The count the last backend of this document saved; 0 when there is none. */
async function load() {
  try {
    const saved = JSON.parse(await readFile(stateFile ?? '', 'utf8'))
    return Number.isInteger(saved?.count) ? saved.count : 0
  } catch {
    return 0
  }
}

const server = createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain' })
  res.end(`multiplayer backend for ${doc}\n`)
})
const io = new Server(server)

// socket.data.identity = { user, auth, backendId, path } from the x-verified-* headers; a socket
// without them, or whose handshake auth.secret_token differs from x-verified-secret, is refused.
io.use(socketIdentity({ secret: true }))

function broadcast() {
  // Sorted: sockets connect in no set order, and every page should list people alike.
  const people = [...io.sockets.sockets.values()].filter((s) => s.data.here).map((s) => s.data.identity.user ?? 'anonymous').sort()
  io.emit('state', { doc, count, people })
}

io.on('connection', (socket) => {
  // The page says hello as soon as it is ready (the upstream README's pattern): then it is "here".
  socket.on('hello', () => {
    socket.data.here = true
    broadcast()
  })
  socket.on('increment', (by) => {
    count += Number.isInteger(by) ? by : 1
    broadcast()
  })
  socket.on('disconnect', broadcast)
})

// HOST: the local server's loopback address, so that only its proxy reaches this backend.
server.listen(backend.port, backend.host, () => console.log(`document ${doc}: listening at count ${count}`))

// A soft terminate (the page's "End the session", the idle sweep, the server closing) sends SIGTERM:
// save the document and exit 0. The sockets stay open until the exit closes them: the page keeps its
// socket while the backend terminates and closes it itself at terminated (an io.close() here raced
// with that and made Chromium log a send on a closing WebSocket).
onTerminate(async () => {
  if (stateFile !== null) {
    // Write, then rename: a cut write never leaves a half-written state behind.
    await writeFile(`${stateFile}.tmp`, JSON.stringify({ count }))
    await rename(`${stateFile}.tmp`, stateFile)
  }
  console.log(`document ${doc}: saved at count ${count}`)
})
