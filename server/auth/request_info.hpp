#pragma once
/// @file Kubernetes RequestInfo parsing (k8s.io/apiserver/pkg/endpoints/request): which verb,
/// group, resource, name and subresource a path asks for, for SubjectAccessReview.

#include <string_view>

#include "server/core/auth_types.hpp"
#include "server/core/request_path.hpp"

namespace gma::auth {

/// The attributes of `method target` (the user is filled in by the caller), from `target`
/// parsed by core::parse_request_path: the same parse as routing, so an encoded '/' cannot
/// make the reviewed resource another one (the guard parses it once, to refuse invalid
/// targets, and reuses the parse). Paths with fewer than four segments under /apis, and
/// anything outside /api and /apis, are non-resource requests checked by path.
core::request_attributes request_attributes_for(std::string_view method, std::string_view target,
                                                const core::request_path& parsed);

}  // namespace gma::auth
