//! Turning an HTTP request into what the PHP API sees: a GET (or PUT) reads only the query, a
//! POST only its body (form-urlencoded or multipart, never JSON), every value trimmed and
//! tag-stripped, the last of repeated keys winning. A multipart `upload_file` is streamed to a
//! temp blob, never buffered whole.
use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{FromRequest, Multipart};
use axum::http::{header, Method, Request};

use super::blobs::{Blobs, TempBlob};
use super::names::clean_input;

/// The file part of an upload.
pub struct UploadPart {
    /// The multipart filename as sent.
    pub filename: String,
    /// The content, on disk.
    pub blob: TempBlob,
}

/// What the API code gets from one request.
#[derive(Default)]
pub struct Params {
    values: HashMap<String, String>,
    /// The `upload_file` part of a multipart POST.
    pub upload: Option<UploadPart>,
}

/// Why a request body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The body broke off or was not valid multipart.
    #[error("reading the request body: {0}")]
    Body(String),
    /// Writing the upload to disk failed.
    #[error("storing the upload: {0}")]
    Io(#[from] std::io::Error),
}

/// Largest form body read into memory.
const FORM_LIMIT: usize = 16 * 1024 * 1024;

impl Params {
    /// A parameter after trimming and tag stripping; `None` when absent.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// A parameter that is present and not empty.
    pub fn non_empty(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|v| !v.is_empty())
    }

    fn insert_pairs<'a>(
        &mut self,
        pairs: impl Iterator<Item = (std::borrow::Cow<'a, str>, std::borrow::Cow<'a, str>)>,
    ) {
        for (k, v) in pairs {
            self.values.insert(k.into_owned(), clean_input(&v));
        }
    }

    /// Reads the parameters of `req` as seen by a server receiving it with `method`.
    pub async fn read(
        req: Request<Body>,
        method: &Method,
        blobs: &Blobs,
    ) -> Result<Params, RequestError> {
        let mut params = Params::default();
        if method == Method::GET || method == Method::PUT || method == Method::HEAD {
            if let Some(q) = req.uri().query() {
                params.insert_pairs(form_urlencoded::parse(q.as_bytes()));
            }
            return Ok(params);
        }
        if method != Method::POST {
            return Ok(params);
        }
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if content_type.starts_with("multipart/form-data") {
            let mut multipart = Multipart::from_request(req, &())
                .await
                .map_err(|e| RequestError::Body(e.to_string()))?;
            while let Some(mut field) = multipart
                .next_field()
                .await
                .map_err(|e| RequestError::Body(e.to_string()))?
            {
                let name = field.name().unwrap_or("").to_string();
                match field.file_name().map(str::to_string) {
                    Some(filename) => {
                        let mut writer = blobs.writer().await?;
                        while let Some(chunk) = field
                            .chunk()
                            .await
                            .map_err(|e| RequestError::Body(e.to_string()))?
                        {
                            writer.write(&chunk).await?;
                        }
                        if name == "upload_file" {
                            let blob = writer.finish().await?;
                            params.upload = Some(UploadPart { filename, blob });
                        }
                    }
                    None => {
                        let text = field
                            .text()
                            .await
                            .map_err(|e| RequestError::Body(e.to_string()))?;
                        params.values.insert(name, clean_input(&text));
                    }
                }
            }
        } else if content_type.starts_with("application/x-www-form-urlencoded") {
            let body = axum::body::to_bytes(req.into_body(), FORM_LIMIT)
                .await
                .map_err(|e| RequestError::Body(e.to_string()))?;
            params.insert_pairs(form_urlencoded::parse(&body));
        }
        Ok(params)
    }
}
