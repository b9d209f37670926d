//! Running a server in-process on `127.0.0.1:0`, on its own thread with one
//! worker, so that the server and the load generator each get one of the
//! two cores.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread::JoinHandle;

/// A running server; stopped and joined on drop.
pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    stop: Option<Box<dyn FnOnce() + Send>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A single-threaded tokio runtime on a new thread, for axum (any version).
/// `build` runs on that runtime (so that e.g. fred's connections live there)
/// and returns what the caller needs (a token) and the serving future, which
/// gets the bound listener and a shutdown signal.
pub(crate) fn spawn_tokio<T, B, BF, S, SF>(name: &str, build: B) -> Result<(Server, T), String>
where
    T: Send + 'static,
    B: FnOnce() -> BF + Send + 'static,
    BF: Future<Output = Result<(T, S), String>>,
    S: FnOnce(tokio::net::TcpListener, tokio::sync::oneshot::Receiver<()>) -> SF,
    SF: Future<Output = ()>,
{
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(SocketAddr, T), String>>();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name(format!("server-{name}"))
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => return drop(ready_tx.send(Err(e.to_string()))),
            };
            rt.block_on(async move {
                let built = async {
                    let (value, serve) = build().await?;
                    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                        .await
                        .map_err(|e| e.to_string())?;
                    let addr = listener.local_addr().map_err(|e| e.to_string())?;
                    Ok::<_, String>((value, serve, listener, addr))
                }
                .await;
                match built {
                    Ok((value, serve, listener, addr)) => {
                        let _ = ready_tx.send(Ok((addr, value)));
                        serve(listener, stop_rx).await;
                    }
                    Err(e) => drop(ready_tx.send(Err(e))),
                }
            });
        })
        .map_err(|e| e.to_string())?;
    let (addr, value) = ready_rx
        .recv()
        .map_err(|_| format!("server {name} died while starting"))??;
    let stop = Box::new(move || {
        let _ = stop_tx.send(());
    });
    Ok((
        Server {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        },
        value,
    ))
}

/// An axum 0.8 router served by `axum::serve` with `TCP_NODELAY`.
pub(crate) fn spawn_axum<T, B, BF>(name: &str, build: B) -> Result<(Server, T), String>
where
    T: Send + 'static,
    B: FnOnce() -> BF + Send + 'static,
    BF: Future<Output = Result<(T, axum::Router), String>>,
{
    spawn_tokio(name, move || async move {
        let (value, router) = build().await?;
        let serve = move |listener: tokio::net::TcpListener,
                          stop: tokio::sync::oneshot::Receiver<()>| async move {
            use axum::serve::ListenerExt;
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            let service = router.into_make_service_with_connect_info::<SocketAddr>();
            let _ = axum::serve(listener, service)
                .with_graceful_shutdown(async move {
                    let _ = stop.await;
                })
                .await;
        };
        Ok((value, serve))
    })
}

/// An axum 0.7 router (jwt-authorizer's stack) served the same way.
pub(crate) fn spawn_axum07(name: &str, router: axum07::Router) -> Result<Server, String> {
    let (server, ()) = spawn_tokio(name, move || async move {
        let serve = move |listener: tokio::net::TcpListener,
                          stop: tokio::sync::oneshot::Receiver<()>| async move {
            let _ = axum07::serve(listener, router)
                .tcp_nodelay(true)
                .with_graceful_shutdown(async move {
                    let _ = stop.await;
                })
                .await;
        };
        Ok(((), serve))
    })?;
    Ok(server)
}

/// An actix-web server with one worker, in its own actix `System` thread.
/// `start` gets the bound listener and returns the running server, e.g.
/// `HttpServer::new(app).workers(1).listen(listener).map(|s| s.run())`.
pub(crate) fn spawn_actix<F>(name: &str, start: F) -> Result<Server, String>
where
    F: FnOnce(std::net::TcpListener) -> std::io::Result<actix_web::dev::Server> + Send + 'static,
{
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let (ready_tx, ready_rx) = mpsc::channel::<Result<actix_web::dev::ServerHandle, String>>();
    let thread = std::thread::Builder::new()
        .name(format!("server-{name}"))
        .spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                match start(listener) {
                    Ok(server) => {
                        let _ = ready_tx.send(Ok(server.handle()));
                        let _ = server.await;
                    }
                    Err(e) => drop(ready_tx.send(Err(e.to_string()))),
                }
            });
        })
        .map_err(|e| e.to_string())?;
    let handle = ready_rx
        .recv()
        .map_err(|_| format!("server {name} died while starting"))??;
    let stop = Box::new(move || {
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            rt.block_on(handle.stop(false));
        }
    });
    Ok(Server {
        addr,
        stop: Some(stop),
        thread: Some(thread),
    })
}
