//! The README's signing snippets, run from `clients/` as customers run them,
//! sign URLs the server accepts.

use crate::helpers::*;

const OTHERS: [Client; 3] = [Client::Node, Client::Php, Client::Shell];

#[test]
fn every_client_signs_an_ascii_name_byte_for_byte_like_the_python_one() {
    for name in ["John Wick", "Mia ~?>?", "a=b"] {
        let pairs = [("text_candidate", name)];
        let python = Client::Python.sign("http://h", USER, SECRET, CERT, &pairs);
        for client in OTHERS {
            let url = client.sign("http://h", USER, SECRET, CERT, &pairs);
            assert_eq!(url, python, "{client:?} signed {name:?} differently");
        }
    }
}

#[tokio::test]
async fn every_client_signs_a_url_that_renders() {
    let app = spawn_app().await;
    let pairs = [("text_candidate", "Grace Hopper")];
    let python = app.get(&app.reference_url(CERT, &pairs)).await;
    assert_eq!(python.status(), 200, "{}", error_of(&python));
    for client in OTHERS {
        let url = client.sign(&app.base_url(), USER, SECRET, CERT, &pairs);
        let response = app.get(&url).await;
        assert_eq!(
            response.status(),
            200,
            "{client:?}: {}",
            error_of(&response)
        );
        assert_eq!(response.headers()["etag"], python.headers()["etag"]);
    }
}

#[tokio::test]
async fn non_ascii_names_signed_as_utf8_or_as_json_escapes_are_the_same_image() {
    // Python escapes non-ASCII as \uXXXX (surrogate pairs above the BMP);
    // Node, PHP and the shell send UTF-8. The URLs differ, the image does not.
    let app = spawn_app().await;
    for name in ["Zoë Ångström", "José Müller 🎓", "Дмитрий Иванов"] {
        let pairs = [("text_candidate", name)];
        let python_url = app.reference_url(CERT, &pairs);
        let python = app.get(&python_url).await;
        assert_eq!(python.status(), 200, "{name}: {}", error_of(&python));
        for client in OTHERS {
            let url = client.sign(&app.base_url(), USER, SECRET, CERT, &pairs);
            assert_ne!(url, python_url, "{client:?} escaped {name:?} like Python");
            let response = app.get(&url).await;
            assert_eq!(
                response.status(),
                200,
                "{client:?} {name}: {}",
                error_of(&response)
            );
            assert_eq!(
                response.headers()["etag"],
                python.headers()["etag"],
                "{client:?} {name}"
            );
        }
    }
}
